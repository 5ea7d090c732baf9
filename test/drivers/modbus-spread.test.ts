/**
 * `spread_requests` (src/drivers/modbus/spread.ts): the requests of a poll go out evenly over
 * its interval (true), or in N steps of requests back to back (a number), on the main thread and
 * on an I/O thread, and every tag is still read once an interval; off (the default), they go
 * out back to back at the interval's start.
 *
 * Four tags 200 registers apart are four requests (max_gap 4). A reading's time is when its
 * reply was decoded, so the offset of each request's reading from the first one's in the
 * same poll shows where in the interval it was sent. Medians over several polls: a loaded
 * machine may delay one poll, not all of them. The first poll reads every request at once
 * (every tag has a value from the start); the spread is judged from the second on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { DriverRunner } from "../../src/app/driver-runner.ts";
import { ThreadedModbusDriver } from "../../src/drivers/modbus/io-thread.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";
import { tcpDevice } from "./modbus-map-support.ts";

const INTERVAL_MS = 800;
const REQUESTS = 4;
const POLLS = 5;
const TAGS = Array.from({ length: REQUESTS }, (_, k) => ({
  name: `t${k}`,
  address: `HR${k * 200}`,
  type: "uint16",
}));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe("spread_requests", () => {
  let sim: ModbusSimulator;
  beforeAll(async () => {
    sim = await startModbusSimulator({ port: 0 });
    for (let k = 0; k < REQUESTS; k++) sim.setRegisters(1, `HR${k * 200}`, [100 + k]);
  });
  afterAll(async () => {
    await sim.close();
  });

  /**
   * Each request's reading time minus the first request's of the same poll, median over polls
   * after the first; and the same for the first poll alone.
   */
  async function offsets(fields: Record<string, unknown>, threaded: boolean) {
    const driver = createDriver(
      tcpDevice(sim, {
        poll_interval: `${INTERVAL_MS}ms`,
        max_gap: 4,
        tags: TAGS,
        io_thread: threaded,
        ...fields,
      }),
    );
    expect(driver instanceof ThreadedModbusDriver).toBe(threaded);
    const samples: TagSample[] = [];
    const runner = new DriverRunner({
      driver,
      log: silentLogger(),
      onSamples: (batch) => samples.push(...batch),
      reconnect: { minMs: 20, maxMs: 200 },
    });
    runner.start();
    try {
      const of = (k: number) => samples.filter((s) => s.tag === `t${k}`);
      await eventually(
        () => TAGS.every((_, k) => of(k).length >= POLLS + 2),
        INTERVAL_MS * (POLLS + 10),
        `${POLLS + 2} polls of every tag`,
      );
      expect(samples.every((s) => s.quality === "good")).toBe(true);
      expect(TAGS.every((_, k) => of(k).every((s) => s.value === 100 + k))).toBe(true);
      // t0's polls after the first, and the reading of each other tag that follows each
      const after = (s0: TagSample, k: number) => {
        const next = of(k).find((s) => s.readTime >= s0.readTime);
        return next === undefined ? Number.NaN : next.readTime - s0.readTime;
      };
      const polls = of(0).slice(1, POLLS + 1);
      return {
        spread: TAGS.map((_, k) => median(polls.map((s0) => after(s0, k)))),
        start: TAGS.map((_, k) => of(k)[0]!.readTime - of(0)[0]!.readTime),
      };
    } finally {
      await runner.stop();
    }
  }

  for (const threaded of [false, true]) {
    const where = threaded ? "on an I/O thread" : "on the main thread";

    it(`sends a poll's requests evenly over the interval, ${where}`, async () => {
      const found = await offsets({ spread_requests: true }, threaded);
      const step = INTERVAL_MS / REQUESTS;
      for (let k = 1; k < REQUESTS; k++) {
        expect(found.spread[k]).toBeGreaterThan(k * step - step / 2);
        expect(found.spread[k]).toBeLessThan(k * step + step / 2);
        // the first poll reads every request at once
        expect(Math.abs(found.start[k]!)).toBeLessThan(step / 2);
      }
    }, 60_000);

    it(`sends them in 2 steps with spread_requests: 2, ${where}`, async () => {
      const found = await offsets({ spread_requests: 2 }, threaded);
      const half = INTERVAL_MS / 2;
      const step = INTERVAL_MS / REQUESTS;
      // t0 and t1 at the start, back to back; t2 and t3 mid-interval, back to back
      expect(found.spread[1]).toBeLessThan(step / 2);
      for (const k of [2, 3]) {
        expect(found.spread[k]).toBeGreaterThan(half - step / 2);
        expect(found.spread[k]).toBeLessThan(half + step / 2);
      }
      expect(found.spread[3]! - found.spread[2]!).toBeLessThan(step / 2);
    }, 60_000);

    it(`sends them back to back by default, ${where}`, async () => {
      const found = await offsets({}, threaded);
      for (let k = 1; k < REQUESTS; k++)
        expect(found.spread[k]).toBeLessThan(INTERVAL_MS / REQUESTS / 2);
    }, 60_000);
  }
});
