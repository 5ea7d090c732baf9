/**
 * The systemd service protocol, spoken by the built daemon to a NOTIFY_SOCKET the test owns:
 * READY, then WATCHDOG pings, none while the event loop is really blocked (paused through the
 * inspector, no test hook in the product), RELOADING/READY around a SIGHUP, STOPPING after
 * SIGTERM; and nothing at all, not even a spawned systemd-notify, without NOTIFY_SOCKET. A
 * systemd-notify that cannot be spawned for a while is not the end of notification (13.5).
 */
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import {
  type Daemon,
  requireSystemdNotify,
  startDaemon,
  startNotifySocket,
  waitQuiet,
  waitUntil,
  writeConfig,
} from "./support.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function configFor(port: number) {
  return writeConfig(
    (data) => `version: 1
gateway: { id: notify-gw, data_dir: ${data} }
http: { listen: false }
devices:
  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    poll_interval: 100ms
    tags:
      - { name: counter, address: HR0, type: uint16 }
`,
  );
}

/** The Chrome DevTools protocol over Node 24's global WebSocket: just enough to pause. */
async function inspector(url: string) {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("error", () => reject(new Error(`cannot open ${url}`)), { once: true });
  });
  const events: string[] = [];
  const replies = new Map<number, (v: unknown) => void>();
  let nextId = 1;
  ws.addEventListener("message", (e) => {
    const msg = JSON.parse(String(e.data)) as { id?: number; method?: string };
    if (msg.id !== undefined) replies.get(msg.id)?.(msg);
    else if (msg.method) events.push(msg.method);
  });
  return {
    events,
    send: (method: string) =>
      new Promise<unknown>((resolve) => {
        const id = nextId++;
        replies.set(id, resolve);
        ws.send(JSON.stringify({ id, method }));
      }),
    close: () =>
      new Promise<void>((resolve) => {
        ws.addEventListener("close", () => resolve(), { once: true });
        ws.close();
      }),
  };
}

describe("systemd notify protocol", () => {
  let sim: ModbusSimulator;

  beforeAll(async () => {
    requireSystemdNotify();
    sim = await startModbusSimulator({ port: 0, recordRequests: false });
  });
  afterAll(async () => {
    await sim?.close();
  });

  it("READY, WATCHDOG pings that stop while the event loop is blocked, RELOADING, STOPPING", async () => {
    const socket = await startNotifySocket();
    const { config } = configFor(sim.port);
    const daemon = startDaemon(["run", "-c", config], {
      nodeArgs: ["--inspect=127.0.0.1:0"],
      env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: "200000" },
    });
    const watchdogs = () => socket.messages.filter((m) => m.includes("WATCHDOG=1")).length;
    try {
      await waitUntil(() => watchdogs() >= 3, 15_000, "three watchdog pings");
      const ready = socket.messages.findIndex((m) => m.includes("READY=1"));
      const firstPing = socket.messages.findIndex((m) => m.includes("WATCHDOG=1"));
      expect(ready).toBeGreaterThanOrEqual(0);
      expect(ready).toBeLessThan(firstPing);

      // Block the loop for real: the debugger pauses it; no timer of the daemon can run.
      const url = /ws:\/\/\S+/.exec(daemon.stderr())?.[0];
      if (!url) throw new Error(`no inspector URL in: ${daemon.stderr()}`);
      const debug = await inspector(url);
      await debug.send("Debugger.enable");
      await debug.send("Debugger.pause");
      await waitUntil(() => debug.events.includes("Debugger.paused"), 10_000, "the pause");
      // a systemd-notify spawned just before the pause may still deliver, however late; then
      // nothing for a second (ten ping intervals): a pinging daemon would never give that spell
      const before = await waitQuiet(watchdogs, 1000, 15_000, "a watchdog ping (paused)");
      await debug.send("Debugger.resume");
      await waitUntil(() => watchdogs() >= before + 3, 10_000, "pings after the resume");
      await debug.close();

      // A reload is announced and its end reported.
      const beforeReload = socket.messages.length;
      daemon.child.kill("SIGHUP");
      await waitUntil(
        () => socket.messages.slice(beforeReload).some((m) => m.includes("READY=1")),
        10_000,
        "READY after the reload",
      );
      const reload = socket.messages.slice(beforeReload).filter((m) => !m.includes("WATCHDOG"));
      expect(reload[0]).toMatch(/RELOADING=1\|MONOTONIC_USEC=\d+/);
      expect(reload[1]).toContain("READY=1");

      expect(await daemon.stop()).toBe(0);
      await waitUntil(
        () => socket.messages.some((m) => m.includes("STOPPING=1")),
        5000,
        "STOPPING",
      );
      expect(socket.messages.at(-1)).toContain("STOPPING=1");
    } finally {
      await daemon.kill();
      await socket.close();
    }
  });

  it("stops pinging while the publisher makes no progress on a live connection", async () => {
    // A hung broker: SIGSTOP keeps the TCP connection open but nothing is acknowledged. The
    // keep alive is long, so the publisher stays connected with records waiting.
    const broker = await startMosquitto();
    const socket = await startNotifySocket();
    const { config } = writeConfig(
      (data) => `version: 1
gateway: { id: notify-gw, data_dir: ${data} }
mqtt: { url: "${broker.url}", keepalive: 10m }
http: { listen: false, health: { topic_interval: false } }
devices:
  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    poll_interval: 50ms
    tags:
      - { name: counter, address: HR0, type: uint16 }
`,
    );
    // WATCHDOG_USEC 0.4 s: a ping every 0.2 s, stuck after 0.8 s without a PUBACK
    const daemon = startDaemon(["run", "-c", config], {
      env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: "400000" },
    });
    const watchdogs = () => socket.messages.filter((m) => m.includes("WATCHDOG=1")).length;
    let counter = 0;
    const changes = setInterval(() => sim.setRegisters(1, "HR0", [++counter & 0xffff]), 30);
    try {
      await waitUntil(() => watchdogs() >= 3, 15_000, "three watchdog pings");
      broker.freeze();
      const stuck = () =>
        daemon.lines().some((l) => l.msg === "not pinging the watchdog: the gateway is stuck");
      await waitUntil(stuck, 15_000, "the stuck line, with events waiting");
      // pings spawned before it may still land; then a second (five intervals) without one
      const before = await waitQuiet(watchdogs, 1000, 15_000, "a watchdog ping (stuck)");
      broker.thaw();
      await waitUntil(
        () => watchdogs() >= before + 3,
        10_000,
        "pings once the broker answers again",
      );
      expect(await daemon.stop()).toBe(0);
    } finally {
      clearInterval(changes);
      broker.thaw();
      await daemon.kill();
      await socket.close();
      await broker.stop();
    }
  });

  it("point 5: a failed spawn of systemd-notify is retried; READY and the pings follow once it is back", async () => {
    // The binary is missing at start (as for a moment during an upgrade), then comes back.
    const real = requireSystemdNotify();
    const bin = mkdtempSync(join(tmpdir(), "plc2mqtt-notify-bin-"));
    const socket = await startNotifySocket();
    const { config, dir } = configFor(sim.port);
    const daemon = startDaemon(["run", "-c", config], {
      env: { PATH: bin, NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: "200000" },
    });
    const logged = (msg: string) => daemon.lines().some((l) => l.msg.startsWith(msg));
    const watchdogs = () => socket.messages.filter((m) => m.includes("WATCHDOG=1")).length;
    try {
      await waitUntil(() => logged("cannot notify systemd"), 15_000, "the failed spawn");
      expect(socket.messages).toEqual([]);
      // put it in place in one step: a half-written script is never run
      writeFileSync(
        join(bin, "next"),
        `#!/bin/sh
exec ${real} "$@"
`,
      );
      chmodSync(join(bin, "next"), 0o755);
      renameSync(join(bin, "next"), join(bin, "systemd-notify"));
      await waitUntil(() => watchdogs() >= 3, 15_000, "watchdog pings once the binary is back");
      const ready = socket.messages.findIndex((m) => m.includes("READY=1"));
      expect(ready).toBeGreaterThanOrEqual(0); // the READY that failed was not lost
      expect(ready).toBeLessThan(socket.messages.findIndex((m) => m.includes("WATCHDOG=1")));
      expect(logged("notifying systemd again")).toBe(true);
      expect(await daemon.stop()).toBe(0);
      await waitUntil(
        () => socket.messages.some((m) => m.includes("STOPPING=1")),
        5000,
        "STOPPING",
      );
    } finally {
      await daemon.kill();
      await socket.close();
      rmSync(bin, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("without NOTIFY_SOCKET sends nothing and spawns no systemd-notify", async () => {
    // A systemd-notify first on PATH that records each call: it proves the daemon would call it.
    const bin = mkdtempSync(join(tmpdir(), "plc2mqtt-fake-notify-"));
    const calls = join(bin, "calls");
    writeFileSync(join(bin, "systemd-notify"), `#!/bin/sh\necho "$@" >> ${calls}\n`);
    chmodSync(join(bin, "systemd-notify"), 0o755);
    const PATH = `${bin}${delimiter}${process.env.PATH ?? ""}`;
    const { config } = configFor(sim.port);

    const run = async (env: NodeJS.ProcessEnv): Promise<Daemon> => {
      const daemon = startDaemon(["run", "-c", config], { env: { PATH, ...env } });
      try {
        await waitUntil(
          () => daemon.lines().some((l) => l.msg === "device connected"),
          15_000,
          "the device connection",
        );
        await sleep(500); // five watchdog intervals, had there been a watchdog
        expect(await daemon.stop()).toBe(0);
      } finally {
        await daemon.kill();
      }
      return daemon;
    };

    await run({ WATCHDOG_USEC: "200000" });
    expect(existsSync(calls)).toBe(false);

    // The same daemon with a NOTIFY_SOCKET does call it: the check above can fail.
    await run({ NOTIFY_SOCKET: join(bin, "nowhere.sock") });
    const recorded = readFileSync(calls, "utf8");
    expect(recorded).toContain("READY=1");
    expect(recorded).toContain("STOPPING=1");
  });
});
