/**
 * The benchmark's own mosquitto, configured as the peer harness configures it
 * (../shared/peer-nodered/mosquitto.conf): TCP_NODELAY, no persistence, unlimited queues, and
 * 1000 QoS 1 messages in flight per client. The last matters: the gateway sends at most the
 * broker's Receive Maximum, which mosquitto sets from max_inflight_messages (20 by default),
 * so the test suite's broker (test/support/mosquitto.ts) would cap the gateway's window at 20.
 * `unreachable()` gives a port nothing listens on (for a gateway that must journal offline).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, requireMosquitto } from "../../support/mosquitto.ts";

export interface BenchBroker {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export async function startBenchBroker(): Promise<BenchBroker> {
  requireMosquitto();
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-bench-broker-"));
  const port = await freePort();
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(
    conf,
    [
      ...(process.getuid?.() === 0 ? ["user root"] : []),
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "set_tcp_nodelay true",
      "max_inflight_messages 1000",
      "max_queued_messages 0",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn("/usr/sbin/mosquitto", ["-c", conf], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`bench mosquitto did not listen on ${port}: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A broker URL on a free port nothing listens on. */
export async function unreachableBrokerUrl(): Promise<string> {
  return `mqtt://127.0.0.1:${await freePort()}`;
}
