/**
 * Issue 14's full-disk run, as it was reported: `data_dir` on a 4 MiB file system, 40 tags
 * changing every 50 ms, the broker down for 40 s. Before the fix the journal stopped at 1,682
 * events, then stayed full for good: appends kept failing after the broker came back and
 * every pending event was published, /healthz stayed 503, events piled up in memory and were
 * gone at the stop. The contract now: at start the gateway warns that max_bytes is larger
 * than its file system's free space; on the full disk published events go first, then the
 * oldest pending, announced; appends resume by themselves once there is room; health is
 * ok again; nothing is lost that no overflow notice announces; the stop loses nothing; and the
 * journal's hash chain verifies (`plc2mqtt events verify`).
 *
 * Part of `npm test` (about 50 s: it is the issue's acceptance run) and of `npm run test:chaos`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { journalRecords, startSubscriber, waitUntil } from "../e2e/harness.ts";
import { runCli } from "../support/cli.ts";
import { type Broker, freePort, startMosquitto } from "../support/mosquitto.ts";
import { type Changing, chaosTags, startChanging } from "./config.ts";
import {
  drainAndStop,
  expectAnnouncedGapsAndComplete,
  lines,
  startLoggingGateway,
  totalDropped,
} from "./full-disk-checks.ts";
import { mountTmpfs, type Tmpfs } from "./tmpfs.ts";

const MiB = 1024 * 1024;
const TAGS = 40;
const OUTAGE_MS = 40_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function writeConfig(dir: string, dataDir: string, simPort: number, broker: string, http: number) {
  const base = `disk-${Math.random().toString(36).slice(2, 8)}`;
  const tags = chaosTags(TAGS);
  const config = join(dir, "gateway.yaml");
  writeFileSync(
    config,
    `version: 1
gateway: { id: e2e-gw, site: disk, data_dir: ${dataDir} }
mqtt: { url: "${broker}", base_topic: ${base}, reconnect_min: 50ms, reconnect_max: 500ms }
http: { listen: "127.0.0.1:${http}", health: { topic_interval: false } }
devices:
  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${simPort}
    poll_interval: 50ms
    tags:
${tags.join("\n")}
`,
  );
  return { base, config };
}

async function healthStatus(port: number): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
  } catch {
    return 0;
  }
}

describe("chaos: a 4 MiB data_dir through a 40 s broker outage (issue 14)", () => {
  let broker: Broker;
  let sim: ModbusSimulator;
  let fs: Tmpfs | undefined;
  let dir: string;
  let plant: Changing | undefined;

  beforeAll(async () => {
    broker = await startMosquitto({ persistence: true });
    sim = await startModbusSimulator({ port: 0, recordRequests: false });
    dir = mkdtempSync(join(tmpdir(), "plc2mqtt-disk-"));
  });
  afterAll(async () => {
    plant?.stop();
    await sim?.close();
    await broker?.stop();
    fs?.unmount();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes again after the outage, loses nothing unannounced, and the chain verifies", async () => {
    fs = mountTmpfs(4 * MiB);
    const http = await freePort();
    const files = writeConfig(dir, `${fs.dir}/data`, sim.port, broker.url, http);
    const sub = await startSubscriber(broker.url, `${files.base}/#`);
    const changing = startChanging(sim, TAGS, 50);
    plant = changing;
    const gateway = startLoggingGateway(files.config);
    let output = "";
    try {
      await waitUntil(() => sub.messages.length > 0, 30_000, "the first event");
      expect(
        lines(gateway.output(), /max_bytes is larger than its file system holds/),
        "no warning at start that max_bytes exceeds the file system's free space",
      ).toBe(1);

      await broker.stop();
      await sleep(OUTAGE_MS);
      const atLimit =
        /^(?=.*journal full: dropped the oldest pending events)(?=.*"limit":"file system")/;
      expect(lines(gateway.output(), atLimit), "the outage never filled the disk").toBeGreaterThan(
        0,
      );
      await broker.start();

      // appends resume by themselves: readings taken after the broker came back arrive
      const back = changing.tick;
      await waitUntil(
        () =>
          sub.messages.some(
            (m) => m.event.subject === "r0" && Number(m.event.data.value) >= back + 20,
          ),
        120_000,
        "readings taken after the outage",
      );
      let status = 0;
      const deadline = Date.now() + 60_000;
      while (status !== 200 && Date.now() < deadline) {
        status = await healthStatus(http);
        if (status !== 200) await sleep(250);
      }
      expect(status, "/healthz once the backlog is gone").toBe(200);

      await drainAndStop(sub.messages, changing, gateway);
    } finally {
      changing.stop();
      await gateway.kill();
      output = gateway.output();
    }
    const refused = /journal commit failed|journal append failed|not journaled/;
    expect(
      output
        .split("\n")
        .filter((l) => refused.test(l))
        .slice(0, 3),
      "appends that failed, or events lost at the stop",
    ).toEqual([]);

    fs.resize(64 * MiB);
    const journal = await journalRecords(`${fs.dir}/data`);
    await sub.close();
    const seen = expectAnnouncedGapsAndComplete(sub.messages, journal, totalDropped(output));
    expect(seen.notices.length, "no overflow notice reached the consumer").toBeGreaterThan(0);

    const verify = await runCli(["events", "verify", "-c", files.config]);
    expect(verify.code, `${verify.stdout}${verify.stderr}`).toBe(0);
  }, 600_000);
});
