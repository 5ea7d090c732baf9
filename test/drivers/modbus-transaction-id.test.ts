/**
 * Modbus TCP transaction ids (mbap-link.ts).
 * - Issue 8: modbus-serial wrapped ids at 256 and kept every request under its id for ever, so
 *   a reply overdue by 256 requests answered the request that reused its id. The overdue reply
 *   is held by the simulator until the test releases it: no clock decides what is tested.
 * - Issue 11.7: a device that does not echo transaction ids (id 0, id + 1, the id's bytes
 *   swapped) made 7 requests in 45 s, every one answered, then went dark, the log blaming it
 *   for silence. Now such a reply is named plainly, polling never stalls, and in `auto` the
 *   device is read one request at a time matched by unit, function and byte count.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type ModbusSimulator,
  startModbusSimulator,
  type TransactionIdQuirk,
} from "../../simulators/modbus/index.ts";
import { DriverRunner } from "../../src/app/driver-runner.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import type { ModbusDriver } from "../../src/drivers/modbus/driver.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { createLogger, silentLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";

const ctx = () => ({ signal: new AbortController().signal, log: silentLogger() });
const HR = (start: number) => ({ unitId: 1, table: "holding_register" as const, start, count: 1 });
const WANT: Record<string, number> = { a: 111, b: 555, c: 222 };

function device(port: number, extra: Record<string, unknown> = {}) {
  return deviceSchema.parse({
    id: "tids",
    protocol: "modbus-tcp",
    host: "127.0.0.1",
    port,
    request_timeout: "200ms",
    max_in_flight: 4,
    max_gap: 0,
    tags: [
      { name: "a", address: "HR0" },
      { name: "b", address: "HR5" },
      { name: "c", address: "HR10" },
    ],
    ...extra,
  });
}

/** A logger whose lines the test can read. */
function capturingLogger() {
  const lines: { level: number; msg: string; detail?: string }[] = [];
  const log = createLogger({
    level: "debug",
    destination: new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split("\n")) if (line) lines.push(JSON.parse(line));
        done();
      },
    }),
  });
  return { log, lines };
}

describe("Modbus TCP transaction ids", () => {
  let sim: ModbusSimulator;
  let driver: ModbusDriver;

  beforeAll(async () => {
    sim = await startModbusSimulator({ port: 0 });
    sim.setRegisters(1, "HR0", [111]);
    sim.setRegisters(1, "HR5", [555]);
    sim.setRegisters(1, "HR10", [222]);
  });
  afterAll(async () => {
    await driver?.close();
    await sim.close();
  });
  beforeEach(async () => {
    sim.faults.clear();
    sim.releaseHeld();
    await driver?.close();
    driver = createDriver(device(sim.port)) as ModbusDriver;
    await driver.connect(ctx());
    // past the probation of a new connection (one request at a time until ids are echoed)
    await driver.read(ctx());
    sim.clearRequests();
  });

  it("runs ids past 255 on one connection: no id repeats over 600 requests", async () => {
    for (let i = 0; i < 200; i++) await driver.read(ctx());
    const ids = sim.requests.map((r) => r.transactionId);
    expect(ids).toHaveLength(600);
    expect(new Set(ids).size).toBe(600);
    expect(Math.max(...(ids as number[]))).toBeGreaterThan(255);
    expect(ids).not.toContain(0);
  });

  it("pipelines up to max_in_flight once the device has echoed ids", async () => {
    sim.faults.hold();
    const reading = driver.read(ctx());
    await eventually(() => sim.requests.length === 3, 2000, "three requests in flight at once");
    sim.releaseHeld();
    for (const s of await reading) expect(s).toMatchObject({ quality: "good", value: WANT[s.tag] });
  });

  it("a reply overdue by 256 requests never answers the request that would reuse its id", async () => {
    sim.faults.hold({ address: 0 });
    await expect(driver.readRaw(HR(0))).rejects.toMatchObject({ code: "MODBUS_TIMEOUT" });
    sim.faults.clear(); // the reply to HR0 stays held until released below
    for (let i = 0; i < 255; i++) expect(await driver.readRaw(HR(5))).toEqual([555]);
    // the 257th request since the overdue one: under ids that wrap at 256 it has its id
    sim.faults.hold({ address: 10 });
    const late = driver.readRaw(HR(10));
    await eventually(() => sim.requests.at(-1)?.address === 10, 2000, "the HR10 request");
    expect(sim.releaseHeld()).toBe(2); // HR0's overdue reply first, then HR10's own
    expect(await late).toEqual([222]);
    const first = sim.requests[0];
    const last = sim.requests.at(-1);
    expect(first?.address).toBe(0);
    expect(last?.transactionId).not.toBe(first?.transactionId);
  });

  it("a duplicated reply with several requests in flight is dropped: no fallback, no reset", async () => {
    // the copies of HR0's and HR5's replies come 30 ms late, while HR10's request (same shape,
    // its reply 80 ms late) still waits: two frames in a row under ids no request has now
    sim.faults.duplicate(0);
    sim.faults.duplicate(30, { address: 0 });
    sim.faults.duplicate(30, { address: 5 });
    sim.faults.delay(80, { address: 10 });
    const connections = sim.connections;
    for (let i = 0; i < 5; i++) {
      for (const s of await driver.read(ctx())) {
        expect(s).toMatchObject({ quality: "good", value: WANT[s.tag] });
      }
    }
    // taken for a device that does not echo ids, they would have failed HR10's request or
    // reset the connection
    expect(driver.connected).toBe(true);
    expect(sim.connections).toBe(connections);
  });
});

describe("Modbus TCP devices that do not echo transaction ids", () => {
  let sim: ModbusSimulator;

  beforeAll(async () => {
    sim = await startModbusSimulator({ port: 0 });
    sim.setRegisters(1, "HR0", [111]);
    sim.setRegisters(1, "HR5", [555]);
    sim.setRegisters(1, "HR10", [222]);
  });
  afterAll(async () => {
    await sim.close();
  });

  /** Runs the device under the runner until `until` holds; returns what it saw. */
  async function run(
    extra: Record<string, unknown>,
    until: (seen: readonly TagSample[]) => boolean,
    what: string,
  ) {
    const { log, lines } = capturingLogger();
    const seen: TagSample[] = [];
    const runner = new DriverRunner({
      driver: createDriver(device(sim.port, { poll_interval: "100ms", ...extra })),
      log,
      onSamples: (s) => seen.push(...s),
      reconnect: { minMs: 20, maxMs: 200 },
    });
    sim.clearRequests();
    runner.start();
    try {
      await eventually(() => until(seen), 10_000, what);
    } finally {
      await runner.stop();
    }
    return { seen, lines };
  }

  /** The latest sample of every tag holds its own value, good. */
  const allGood = (seen: readonly TagSample[], from = 0) =>
    Object.keys(WANT).every((tag) => {
      const last = seen.slice(from).findLast((s) => s.tag === tag);
      return last?.quality === "good" && last.value === WANT[tag];
    });

  const QUIRKS: [TransactionIdQuirk, RegExp][] = [
    ["zero", /the device answered with id 0 to request \d+: it does not echo transaction ids/],
    ["plus-one", /the device answered with id (\d+) to request \d+: it does not echo/],
    ["swapped", /the device answered with id (\d+) to request \d+: it does not echo/],
  ];

  for (const [quirk, named] of QUIRKS) {
    it(`answering with ${quirk} ids: named, then read one request at a time, never stalled`, async () => {
      sim.faults.clear();
      sim.faults.transactionIds(quirk);
      // a timeout far beyond any stall of a loaded machine: "never stalled" is about the
      // quirk, never about the 200 ms the other tests use
      const { seen, lines } = await run(
        { request_timeout: "5s" },
        (s) => allGood(s) && sim.requests.length > 60,
        "good values, still polling",
      );
      // every good sample holds its own tag's value
      for (const s of seen) if (s.quality === "good") expect(s.value).toBe(WANT[s.tag]);
      // the replies that were not taken say why, plainly
      const refused = seen.filter((s) => s.reasonCode === "MODBUS_TRANSACTION_ID");
      expect(refused.length).toBeGreaterThan(0);
      expect(refused[0]!.reason).toMatch(named);
      const warning = lines.find((l) => /does not echo transaction ids/.test(l.msg));
      expect(warning?.level).toBe(40);
      expect(warning?.detail).toMatch(named);
      // polling never stalled: every 100 ms poll made its three requests, one at a time
      expect(sim.requests.length).toBeGreaterThan(60);
      expect(seen.some((s) => /no response within|not responding/.test(s.reason ?? ""))).toBe(
        false,
      );
    });
  }

  it("keeps to one request at a time across a reconnect, once it has learned", async () => {
    sim.faults.clear();
    sim.faults.transactionIds("zero");
    let dropped = false;
    let afterDrop = 0;
    const { seen } = await run(
      {},
      (s) => {
        if (!dropped && allGood(s)) {
          dropped = true;
          afterDrop = s.length;
          sim.dropConnections();
        }
        return dropped && allGood(s, afterDrop) && s.length > afterDrop + 30;
      },
      "good values after the reconnect",
    );
    const refusedAfter = seen
      .slice(afterDrop)
      .filter((s) => s.reasonCode === "MODBUS_TRANSACTION_ID");
    expect(refusedAfter).toEqual([]);
  });

  it("transaction_ids: match keeps refusing such replies, with the reason, and keeps polling", async () => {
    sim.faults.clear();
    sim.faults.transactionIds("zero");
    const { seen } = await run(
      { transaction_ids: "match", max_in_flight: 1 },
      (s) => s.length > 60,
      "polls",
    );
    for (const s of seen) {
      expect(s).toMatchObject({ quality: "bad", reasonCode: "MODBUS_TRANSACTION_ID" });
      expect(s.reason).toMatch(/answered with id 0 to request \d+: it does not echo .*match/);
    }
  });

  it("transaction_ids: ignore reads one request at a time from the start, no warning", async () => {
    sim.faults.clear();
    sim.faults.transactionIds("swapped");
    const { seen, lines } = await run({ transaction_ids: "ignore" }, (s) => allGood(s), "values");
    expect(seen.filter((s) => s.reasonCode === "MODBUS_TRANSACTION_ID")).toEqual([]);
    expect(lines.filter((l) => l.level >= 40 && /transaction id/.test(l.msg))).toEqual([]);
  });
});
