/**
 * Chaos on a full file system: the built gateway's data dir is a small real tmpfs (a few MiB,
 * far below journal.max_bytes), under 1,600 events/s while the broker goes away and comes
 * back. Each outage runs the journal into the disk's limit, then another writer takes every
 * byte left on the tmpfs (a filler file), so the journal's writes meet ENOSPC for real. The
 * contract (guarantee 5): a full file system is treated like the size limit, published
 * events are freed first, then the oldest pending ones are dropped and announced, and the
 * gateway keeps writing and publishing; nothing journaled is lost or stored twice: every
 * event the journal still holds reaches the consumer, the stream has no gap that an overflow
 * notice does not announce (`oldest_kept_sequence` names the event after it), and no reading
 * (tag, time, value) is journaled under two sequences (which a commit reported failed after
 * its COMMIT, then appended again, produces). Then, on a disk filled to the last byte, the
 * gateway must start again and go on publishing.
 *
 * Outside `npm test` (about 40 s): `npm run test:chaos` runs it (test/chaos/vitest.config.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { journalRecords, type Received, startSubscriber, waitUntil } from "../e2e/harness.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import { type Changing, startChanging, writeChaosConfig } from "./config.ts";
import {
  drainAndStop,
  expectAnnouncedGapsAndComplete,
  lines,
  startLoggingGateway as startGateway,
  totalDropped,
} from "./full-disk-checks.ts";
import { mountTmpfs, type Tmpfs } from "./tmpfs.ts";

const MiB = 1024 * 1024;
const REGISTERS = 80;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("chaos: a full file system under the journal", () => {
  let broker: Broker;
  let sim: ModbusSimulator;
  let fs: Tmpfs | undefined;
  /** Stopped by the first test; started again before the second even when the first failed. */
  let brokerDown = false;
  let plant: Changing | undefined;

  beforeAll(async () => {
    broker = await startMosquitto({ persistence: true });
    sim = await startModbusSimulator({ port: 0, recordRequests: false });
  });
  afterAll(async () => {
    plant?.stop();
    await sim?.close();
    await broker?.stop();
    fs?.unmount();
  });

  let files: ReturnType<typeof writeChaosConfig> | undefined;

  it("keeps writing, loses nothing journaled and stores nothing twice", async () => {
    fs = mountTmpfs(6 * MiB);
    files = writeChaosConfig(sim.port, broker.url, REGISTERS, `${fs.dir}/data`);
    const sub = await startSubscriber(broker.url, `${files.base}/#`);
    const changing = startChanging(sim, REGISTERS, 20);
    plant = changing;
    const gateway = startGateway(files.config);
    let said = "";
    let output = "";
    try {
      await waitUntil(() => sub.messages.length > 0, 30_000, "the first event");
      // the broker goes away until the journal is at the disk's limit (events pile up, the
      // oldest are dropped), another writer takes every byte left, the broker comes back; twice
      const atLimit =
        /^(?=.*journal full: dropped the oldest pending events)(?=.*"limit":"file system")/;
      for (let i = 0; i < 2; i++) {
        await broker.stop();
        brokerDown = true;
        const before = lines(gateway.output(), atLimit);
        await waitUntil(
          () => lines(gateway.output(), atLimit) > before,
          120_000,
          "the journal at the disk's limit",
        ).catch((err: Error) => {
          const tail = gateway.output().split("\n").slice(-12).join("\n");
          throw new Error(`${err.message} (${fs!.free()} bytes free); the gateway said:\n${tail}`);
        });
        fs.fill(0);
        await sleep(3000);
        await broker.start();
        brokerDown = false;
        await sleep(5000);
        fs.release();
      }
      // the newest reading is never dropped nor conflated away
      await drainAndStop(sub.messages, changing, gateway);
    } finally {
      changing.stop();
      await gateway.kill();
      output = gateway.output();
      said = output
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
    let stream: Received[];
    try {
      const seen = expectAnnouncedGapsAndComplete(sub.messages, journal, totalDropped(output));
      stream = seen.stream;
      // what this test is for happened: drops at the disk's limit, announced; real ENOSPC met
      expect(seen.notices.length, "no overflow notice reached the consumer").toBeGreaterThan(0);
    } catch (err) {
      throw new Error(`${(err as Error).message}; the gateway's last warnings:\n${said}`);
    }
    expect(lines(output, /reserve released, making room/), "ENOSPC never met").toBeGreaterThan(0);
    // and every commit went through on the full disk: none failed, nothing waited in the sink
    const refused = /journal commit failed|journal append failed|not journaled/;
    expect(
      output
        .split("\n")
        .filter((l) => refused.test(l))
        .slice(0, 2),
      "commits the full disk refused",
    ).toEqual([]);
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
    if (brokerDown) await broker.start();
    fs.release();
    fs.fill(0);
    expect(fs.free(), "the disk is not full").toBe(0);
    const sub = await startSubscriber(broker.url, `${files.base}/#`);
    const changing = startChanging(sim, REGISTERS, 20, 100_000);
    plant = changing;
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
      changing.stop();
      await gateway.kill();
      await sub.close();
    }
  }, 120_000);
});
