/**
 * Chaos: the built gateway is killed with SIGKILL at random moments (while starting, while
 * publishing, while the broker is away, inside group commits) and started again, under more
 * than 1,000 events/s, while the broker flaps: stopped, down for a while, started again, at
 * random. Afterwards the consumer (a persistent QoS 1 session on a broker that keeps it across
 * its restarts) must hold every event the journal holds, gap-free in sequence order, and the
 * only duplicates are re-sends of one id with the same content (test/e2e/harness.ts).
 *
 * `npm test` runs CHAOS_KILLS (default 12); `npm run test:chaos` runs 100 and more.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { openJournalReader, verifyJournal } from "../../src/journal/index.ts";
import {
  expectGapFreeAndComplete,
  journalRecords,
  startGateway,
  startSubscriber,
  waitUntil,
} from "../e2e/harness.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import { type Changing, lastReadingArrived, startChanging, writeChaosConfig } from "./config.ts";

const KILLS = Number(process.env.CHAOS_KILLS ?? 12);
/** Registers that all change every 20 ms, read every 50 ms: REGISTERS x 20 = 3,000 events/s offered. */
const REGISTERS = 150;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = (min: number, max: number) => min + Math.random() * (max - min);

/** Whether the journal holds no record the publisher has not finished with (read-only). */
function nothingPending(dataDir: string): boolean {
  const reader = openJournalReader(dataDir);
  try {
    return reader.count({ status: "pending" }) === 0;
  } finally {
    reader.close();
  }
}

describe("chaos: SIGKILLs under load while the broker flaps", () => {
  let broker: Broker;
  let sim: ModbusSimulator;
  let plant: Changing | undefined;

  beforeAll(async () => {
    broker = await startMosquitto({ persistence: true });
    sim = await startModbusSimulator({ port: 0, recordRequests: false });
  });
  afterAll(async () => {
    plant?.stop();
    await sim?.close();
    await broker?.stop();
  });

  it(`loses nothing across ${KILLS} SIGKILLs at 1,000+ events/s with the broker flapping`, async () => {
    const files = writeChaosConfig(sim.port, broker.url, REGISTERS);
    const sub = await startSubscriber(broker.url, `${files.base}/#`);
    const changing = startChanging(sim, REGISTERS, 20);
    plant = changing;
    let gateway = startGateway(files.config);
    let flapping = true;
    let outages = 0;
    // the broker: up a while, then down a while (SIGTERM: the consumer's session is kept)
    const flapper = (async () => {
      while (flapping) {
        await sleep(between(500, 4000));
        if (!flapping) break;
        await broker.stop();
        outages++;
        await sleep(between(200, 3000));
        await broker.start();
      }
    })();
    const started = Date.now();
    try {
      for (let i = 0; i < KILLS; i++) {
        // mostly while running, sometimes right after the start (journal opening, connecting)
        await sleep(Math.random() < 0.2 ? between(0, 300) : between(500, 3000));
        await gateway.kill();
        gateway = startGateway(files.config);
      }
      flapping = false;
      await flapper;
      const seen = () => sub.messages.filter((m) => m.event.type === "plc2mqtt.telemetry").length;
      await waitUntil(() => seen() > 0, 30_000, "telemetry after the last restart");
      changing.stop();
      // everything journaled drains (the backlog of the outages), then a clean stop
      await waitUntil(
        () => lastReadingArrived(sub.messages, changing.tick),
        600_000,
        "the last reading",
      );
      // a clean stop leaves what is still unpublished in the journal for the next start: stop
      // once the publisher caught up (its cursor, as committed, past every record)
      await waitUntil(() => nothingPending(files.dataDir), 120_000, "the publisher to catch up");
      expect(await gateway.stop()).toBe(0);
      // Telemetry the overload policy held while the outages' backlog drained is journaled at
      // the stop and goes out with the next start: one more run, the plant quiet, drains it.
      if (!nothingPending(files.dataDir)) {
        gateway = startGateway(files.config);
        await waitUntil(() => nothingPending(files.dataDir), 120_000, "the last run to drain");
        expect(await gateway.stop()).toBe(0);
      }
    } finally {
      flapping = false;
      changing.stop();
      await flapper.catch(() => {});
      await gateway.kill();
    }
    const seconds = (Date.now() - started) / 1000;
    const journal = await journalRecords(files.dataDir);
    // every journaled event arrives; waits for the tail the broker may still be delivering
    await waitUntil(
      () => {
        const have = new Set(sub.messages.map((m) => m.event.sequence));
        return journal.every((s) => have.has(s.toString().padStart(20, "0")));
      },
      60_000,
      "every journaled event at the consumer",
    ).catch(() => {});
    await sub.close();
    const stream = expectGapFreeAndComplete(sub.messages, journal);
    // and the hash chain came through every kill whole (issue 14)
    const chain = verifyJournal(files.dataDir);
    expect(chain.ok, chain.broken?.message).toBe(true);
    const telemetry = stream.filter((m) => m.event.type === "plc2mqtt.telemetry").length;
    process.stderr.write(
      `chaos: ${KILLS} kills, ${outages} broker outages, ${journal.length} events journaled in ${seconds.toFixed(0)} s (${(journal.length / seconds).toFixed(0)}/s, ${telemetry} telemetry), ${sub.messages.length - stream.length} re-sends\n`,
    );
    expect(outages).toBeGreaterThan(0);
  }, 3_600_000);
});
