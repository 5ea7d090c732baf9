/**
 * Modbus TCP transaction ids (mbap-link.ts). modbus-serial 8.0.25 wraps ids at 256 and keeps
 * every request under its id for ever, so a reply overdue by 256 requests answered the request
 * that reused its id. These tests also fail if a modbus-serial upgrade stops taking the id the
 * link sets (the one place that reaches into its internals).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import type { ModbusDriver } from "../../src/drivers/modbus/driver.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";

const ctx = () => ({ signal: new AbortController().signal, log: silentLogger() });
const HR = (start: number) => ({ unitId: 1, table: "holding_register" as const, start, count: 1 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
    await driver?.close();
    driver = createDriver(
      deviceSchema.parse({
        id: "tids",
        protocol: "modbus-tcp",
        host: "127.0.0.1",
        port: sim.port,
        request_timeout: "200ms",
        max_in_flight: 4,
        max_gap: 0,
        tags: [
          { name: "a", address: "HR0" },
          { name: "b", address: "HR5" },
          { name: "c", address: "HR10" },
        ],
      }),
    ) as ModbusDriver;
    await driver.connect(ctx());
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

  it("a reply overdue by 256 requests never answers the request that would reuse its id", async () => {
    sim.faults.delay(2500, { address: 0 });
    sim.faults.delay(1000, { address: 10 });
    const started = Date.now();
    await expect(driver.readRaw(HR(0))).rejects.toMatchObject({ code: "MODBUS_TIMEOUT" });
    for (let i = 0; i < 255; i++) expect(await driver.readRaw(HR(5))).toEqual([555]);
    // the 256 requests take a fraction of the 2.4 s allowed; if not, the timing proves nothing
    expect(Date.now() - started).toBeLessThan(2200);
    await sleep(2400 - (Date.now() - started));
    // waits from 2400 to 2600 ms: the reply to HR0, with the id of the first request, comes at 2500
    const late = driver.readRaw(HR(10));
    await expect(late).rejects.toMatchObject({ code: "MODBUS_TIMEOUT" });
    const first = sim.requests[0];
    const last = sim.requests.at(-1);
    expect(first?.address).toBe(0);
    expect(last?.address).toBe(10);
    expect(last?.transactionId).not.toBe(first?.transactionId);
    sim.faults.clear();
    expect(await driver.readRaw(HR(10))).toEqual([222]);
  });

  it("a duplicated reply with several requests in flight never answers another request", async () => {
    sim.faults.duplicate(0);
    sim.faults.duplicate(30, { address: 5 });
    const seen: TagSample[] = [];
    for (let i = 0; i < 20; i++) seen.push(...(await driver.read(ctx())));
    const want: Record<string, number> = { a: 111, b: 555, c: 222 };
    for (const s of seen) expect(s).toMatchObject({ quality: "good", value: want[s.tag] });
  });
});
