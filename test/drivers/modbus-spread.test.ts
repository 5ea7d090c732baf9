/**
 * `spread_requests` (src/drivers/modbus/spread.ts): the requests of a poll go out evenly over
 * its interval (true), or in N steps of requests back to back (a number), on the main thread and
 * on an I/O thread, and every tag is still read once an interval; off (false), they go out back
 * to back at the interval's start. By default (auto), a poll of 500 tags or fewer goes back to
 * back and one of 1,000 tags in 2 steps.
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
import { stepsOf } from "../../src/drivers/modbus/spread.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";
import { driverFor, tcpDevice } from "./modbus-map-support.ts";

const INTERVAL_MS = 800;
const REQUESTS = 4;
const POLLS = 5;
const TAGS = Array.from({ length: REQUESTS }, (_, k) => ({
  name: `t${k}`,
  address: `HR${k * 200}`,
  type: "uint16",
}));
/** 1,000 contiguous registers: 8 requests of 125. */
const BIG_AT = 2000;
const BIG = Array.from({ length: 1000 }, (_, k) => ({
  name: `t${k}`,
  address: `HR${BIG_AT + k}`,
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
    sim.setRegisters(
      1,
      `HR${BIG_AT}`,
      BIG.map((_, k) => 100 + k),
    );
  });
  afterAll(async () => {
    await sim.close();
  });

  /**
   * Each request's reading time minus the first request's of the same poll, median over polls
   * after the first; and the same for the first poll alone.
   */
  async function offsets(fields: Record<string, unknown>, threaded: boolean, tags = TAGS) {
    const driver = createDriver(
      tcpDevice(sim, {
        poll_interval: `${INTERVAL_MS}ms`,
        max_gap: 4,
        tags,
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
      const byTag = new Map<string, TagSample[]>();
      const of = (k: number) => {
        for (const s of samples.splice(0)) {
          const list = byTag.get(s.tag) ?? [];
          list.push(s);
          byTag.set(s.tag, list);
        }
        return byTag.get(`t${k}`) ?? [];
      };
      await eventually(
        () => tags.every((_, k) => of(k).length >= POLLS + 2),
        INTERVAL_MS * (POLLS + 10),
        `${POLLS + 2} polls of every tag`,
      );
      of(0); // every sample so far sorted by tag, then all of them checked
      expect([...byTag.values()].flat().every((s) => s.quality === "good")).toBe(true);
      expect(tags.every((_, k) => of(k).every((s) => s.value === 100 + k))).toBe(true);
      // t0's polls after the first, and the reading of each other tag that follows each
      const after = (s0: TagSample, k: number) => {
        const next = of(k).find((s) => s.readTime >= s0.readTime);
        return next === undefined ? Number.NaN : next.readTime - s0.readTime;
      };
      const polls = of(0).slice(1, POLLS + 1);
      return {
        spread: tags.map((_, k) => median(polls.map((s0) => after(s0, k)))),
        start: tags.map((_, k) => of(k)[0]!.readTime - of(0)[0]!.readTime),
      };
    } finally {
      await runner.stop();
    }
  }

  it("shows the steps in the plan that `plc2mqtt read` prints", () => {
    const driver = driverFor(sim, { poll_interval: `${INTERVAL_MS}ms`, tags: BIG });
    const plan = driver.describePlan();
    expect(plan).toHaveLength(8);
    expect(plan[0]).toMatch(/^unit 1 HR2000\+125 every 800ms: t0, t1, /);
    expect(plan[3]).toMatch(/^unit 1 HR2375\+125 every 800ms: t375, /);
    expect(plan[4]).toMatch(/^unit 1 HR2500\+125 every 800ms at \+400ms: t500, /);
    expect(plan[7]).toMatch(/^unit 1 HR2875\+125 every 800ms at \+400ms: t875, /);
  });

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

    it(`sends them back to back by default when a poll has 500 tags or fewer, ${where}`, async () => {
      const found = await offsets({}, threaded);
      for (let k = 1; k < REQUESTS; k++)
        expect(found.spread[k]).toBeLessThan(INTERVAL_MS / REQUESTS / 2);
    }, 60_000);

    it(`sends a poll of 1,000 tags in 2 steps by default, ${where}`, async () => {
      const found = await offsets({}, threaded, BIG);
      const half = INTERVAL_MS / 2;
      // requests 1-4 (t0-t499) at the start, back to back; 5-8 (t500-t999) mid-interval
      for (const k of [124, 125, 499]) expect(found.spread[k]).toBeLessThan(INTERVAL_MS / 8);
      for (const k of [500, 624, 999]) {
        expect(found.spread[k]).toBeGreaterThan(half - INTERVAL_MS / 8);
        expect(found.spread[k]).toBeLessThan(half + INTERVAL_MS / 8);
      }
      // the first poll reads them all at once
      expect(Math.abs(found.start[999]!)).toBeLessThan(INTERVAL_MS / 8);
    }, 60_000);

    it(`sends a poll of 1,000 tags back to back with spread_requests: false, ${where}`, async () => {
      const found = await offsets({ spread_requests: false }, threaded, BIG);
      for (const k of [499, 500, 999]) expect(found.spread[k]).toBeLessThan(INTERVAL_MS / 8);
    }, 60_000);
  }
});

describe("spread_requests: auto, the steps it chooses", () => {
  const steps = (tags: number, requests: number, interval: number) =>
    stepsOf("auto", { tags, requests, interval });

  it("keeps a step to 500 tags, steps 50 ms apart at the closest, no more steps than requests", () => {
    expect(steps(1000, 8, 100)).toBe(2); // the peer harness's 1,000 registers
    expect(steps(5000, 40, 1000)).toBe(10); // a plant's 5,000 registers every second
    expect(steps(10_000, 80, 1000)).toBe(20);
    expect(steps(2000, 16, 100)).toBe(2); // 50 ms apart at the closest: 1,000 a step
    expect(steps(1001, 9, 1000)).toBe(3);
    expect(steps(500, 4, 1000)).toBe(1);
    expect(steps(400, 4, 100)).toBe(1);
    expect(steps(2000, 1, 1000)).toBe(1); // one request is never split
    expect(steps(1000, 8, 99)).toBe(1); // no room for two steps 50 ms apart
  });

  it("leaves a poll back to back that would still hand over more than 1,000 tags a step", () => {
    expect(steps(2001, 17, 100)).toBe(1);
    expect(steps(10_000, 80, 100)).toBe(1); // the peer harness's 10,000 registers
    expect(steps(25_000, 200, 1000)).toBe(1);
    expect(steps(20_000, 160, 1000)).toBe(20);
  });

  it("leaves the other settings as they say", () => {
    const group = { tags: 1000, requests: 8, interval: 100 };
    expect(stepsOf(true, group)).toBe(8);
    expect(stepsOf(false, group)).toBe(1);
    expect(stepsOf(3, group)).toBe(3);
  });
});
