/**
 * Chaos on a full file system: the built gateway's data dir is a small real tmpfs (a few MiB,
 * far below journal.max_bytes), under 1,600 events/s while the broker goes away and comes
 * back, so the journal's writes meet ENOSPC again and again. The contract (guarantee 5): a
 * full file system is treated like the size limit, published events are freed first, and the
 * gateway keeps writing; nothing journaled is lost or stored twice: every journaled event
 * reaches the consumer gap-free, and no reading (tag, time, value) is journaled under two
 * sequences (which a commit reported failed after its COMMIT, then appended again, produces).
 * Then, on the still full disk, the gateway must start again and go on publishing.
 *
 * Outside `npm test` (about 100 s): `npm run test:chaos` runs it (test/chaos/vitest.config.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import {
  expectGapFreeAndComplete,
  journalRecords,
  startGateway,
  startSubscriber,
  waitUntil,
} from "../e2e/harness.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import { lastReadingArrived, writeChaosConfig } from "./config.ts";
import { mountTmpfs, type Tmpfs } from "./tmpfs.ts";

const MiB = 1024 * 1024;
const REGISTERS = 80;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("chaos: a full file system under the journal", () => {
  let broker: Broker;
  let sim: ModbusSimulator;
  let fs: Tmpfs | undefined;
  let ticker: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    broker = await startMosquitto({ persistence: true });
    sim = await startModbusSimulator({ port: 0, recordRequests: false });
  });
  afterAll(async () => {
    clearInterval(ticker);
    await sim?.close();
    await broker?.stop();
    fs?.unmount();
  });

  let files: ReturnType<typeof writeChaosConfig> | undefined;

  it("keeps writing, loses nothing journaled and stores nothing twice", async () => {
    fs = mountTmpfs(6 * MiB);
    files = writeChaosConfig(sim.port, broker.url, REGISTERS, `${fs.dir}/data`);
    const sub = await startSubscriber(broker.url, `${files.base}/#`);
    let tick = 0;
    ticker = setInterval(() => {
      tick++;
      sim.setRegisters(
        1,
        "HR0",
        Array.from({ length: REGISTERS }, (_, a) => (tick + a) & 0xffff),
      );
    }, 20);
    const gateway = startGateway(files.config);
    let said = "";
    try {
      await waitUntil(() => sub.messages.length > 0, 30_000, "the first event");
      // the broker goes away until the disk is full (events pile up), comes back, twice
      for (let i = 0; i < 2; i++) {
        await broker.stop();
        await waitUntil(() => fs!.free() < 256 * 1024, 120_000, "the tmpfs to fill up");
        await sleep(3000);
        await broker.start();
        await sleep(5000);
      }
      clearInterval(ticker);
      ticker = undefined;
      // everything journaled drains, then a clean stop (a gateway that cannot drain fails here)
      await waitUntil(
        () => lastReadingArrived(sub.messages, tick),
        120_000,
        "the last reading",
      ).catch(() => {});
      expect(gateway.child.exitCode, gateway.output().slice(-3000)).toBeNull();
      expect(await gateway.stop()).toBe(0);
    } finally {
      clearInterval(ticker);
      await gateway.kill();
      said = gateway
        .output()
        .split("\n")
        .filter((l) => /"level":(40|50|60)/.test(l))
        .slice(-8)
        .join("\n");
    }
    // room to read the journal back (opening it checkpoints)
    fs.resize(64 * MiB);
    const journal = await journalRecords(files.dataDir);
    await waitUntil(
      () => {
        const have = new Set(sub.messages.map((m) => m.event.sequence));
        return journal.every((s) => have.has(s.toString().padStart(20, "0")));
      },
      60_000,
      "every journaled event at the consumer",
    ).catch(() => {});
    await sub.close();
    let stream: ReturnType<typeof expectGapFreeAndComplete>;
    try {
      stream = expectGapFreeAndComplete(sub.messages, journal);
    } catch (err) {
      throw new Error(`${(err as Error).message}; the gateway's last warnings:\n${said}`);
    }
    const readings = new Map<string, string[]>();
    for (const m of stream) {
      if (m.event.type !== "plc2mqtt.telemetry") continue;
      const key = `${m.event.subject}@${String(m.event.time)}=${String(m.event.data.value)}`;
      readings.set(key, [...(readings.get(key) ?? []), m.event.sequence]);
    }
    const twice = [...readings].filter(([, seqs]) => seqs.length > 1);
    expect(
      `${twice.length}: ${twice
        .slice(0, 3)
        .map(([k, seqs]) => `${k} as ${seqs.map(Number).join(",")}`)
        .join("; ")}`,
      "one reading journaled under several sequences (ids)",
    ).toBe("0: ");
  }, 600_000);

  it("starts again on a full disk and goes on publishing", async () => {
    if (!fs || !files) throw new Error("needs the journal of the test before");
    fs.fill(0);
    const sub = await startSubscriber(broker.url, `${files.base}/#`);
    let tick = 100_000;
    ticker = setInterval(() => {
      tick++;
      sim.setRegisters(
        1,
        "HR0",
        Array.from({ length: REGISTERS }, (_, a) => (tick + a) & 0xffff),
      );
    }, 20);
    const gateway = startGateway(files.config);
    try {
      const fresh = () =>
        sub.messages.filter(
          (m) =>
            m.event.type === "plc2mqtt.telemetry" &&
            Number(m.event.data.value) >= 100_000 % 0x10000,
        ).length;
      await waitUntil(
        () => fresh() > 100 || gateway.child.exitCode !== null,
        30_000,
        "new telemetry from the restarted gateway",
      ).catch(() => {});
      expect(
        gateway.child.exitCode,
        `the gateway exited: ${gateway.output().slice(-1500)}`,
      ).toBeNull();
      expect(fresh()).toBeGreaterThan(100);
      expect(await gateway.stop()).toBe(0);
    } finally {
      clearInterval(ticker);
      ticker = undefined;
      await gateway.kill();
      await sub.close();
    }
  }, 120_000);
});
