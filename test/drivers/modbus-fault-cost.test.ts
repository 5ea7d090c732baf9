/**
 * Issue 13, point 8: a fault costs the request it hit, not seconds of every tag's polling.
 * Against a device faulting 15 % of its replies the gateway made 23-30 % of its requests over
 * Modbus TCP: a garbled reply reset the connection and the runner's reconnect backoff then
 * held every tag, and two replies lost in one poll skipped the unit for a second. The figures
 * come from test/bench/modbus-faults.ts; these tests hold the mechanisms, on conditions,
 * never on a clock.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { Driver, TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { eventually, expectHandlesBackTo, openHandles } from "../support/resources.ts";

const ctx = () => ({ signal: new AbortController().signal, log: silentLogger() });
const byTag = (samples: readonly TagSample[]) =>
  Object.fromEntries(samples.map((s) => [s.tag, s])) as Record<string, TagSample>;
/** The device: 8 one-register tags 300 apart, each holding its own value. */
const TAGS = Array.from({ length: 8 }, (_, i) => ({ name: `t${i}`, address: `HR${i * 300}` }));
const own = (i: number) => 1000 + i;

describe("point 8: Modbus TCP, a fault costs the request it hit", () => {
  let sim: ModbusSimulator;
  let driver: Driver;
  let baseline: Record<string, number>;

  beforeAll(async () => {
    baseline = openHandles();
    sim = await startModbusSimulator({ port: 0 });
    for (const [i, tag] of TAGS.entries()) sim.setRegisters(1, tag.address, [own(i)]);
  });
  afterAll(async () => {
    await driver?.close();
    await sim.close();
    await expectHandlesBackTo(baseline);
  });
  beforeEach(async () => {
    sim.faults.clear();
    await driver?.close();
    driver = createDriver(
      deviceSchema.parse({
        id: "flaky",
        protocol: "modbus-tcp",
        host: "127.0.0.1",
        port: sim.port,
        max_in_flight: 4,
        request_timeout: "2s",
        tags: TAGS,
      }),
    );
    await driver.connect(ctx());
    // past probation: four requests in flight from here on
    for (const s of await driver.read!(ctx())) expect(s.quality).toBe("good");
  });

  for (const kind of ["garbage", "oversized"] as const) {
    it(`point 8: a ${kind} reply fails its own request only; the link reconnects by itself`, async () => {
      const connections = sim.connections;
      sim.faults.malformed(kind, { address: 600 });
      const got = byTag(await driver.read!(ctx()));
      // the reply that broke the stream costs its request: the others in flight went again
      expect(got.t2).toMatchObject({ quality: "bad", reasonCode: "MODBUS_MALFORMED" });
      for (const i of [0, 1, 3, 4, 5, 6, 7]) {
        expect(got[`t${i}`], got[`t${i}`]?.reason).toMatchObject({
          quality: "good",
          value: own(i),
        });
      }
      // no lost connection for the runner to see, so no reconnect backoff
      expect(driver.connected).toBe(true);
      expect(sim.connections).toBeGreaterThan(connections);
      sim.faults.clear();
      const after = await driver.read!(ctx());
      for (const s of after) expect(s, s.reason).toMatchObject({ quality: "good" });
    });
  }

  it("point 8: two replies lost in one poll are one silence: the unit is not skipped", async () => {
    // t2 and t3 go out together with t0 and t1; both stay unanswered until their timeouts
    sim.faults.silence({ address: 600 });
    sim.faults.silence({ address: 900 });
    const got = byTag(await driver.read!(ctx()));
    for (const tag of ["t2", "t3"]) {
      expect(got[tag]).toMatchObject({ quality: "bad", reasonCode: "MODBUS_TIMEOUT" });
    }
    sim.faults.clear();
    const after = await driver.read!(ctx());
    for (const s of after) expect(s, s.reason).toMatchObject({ quality: "good" });
  });

  it("point 8: a device that garbles every reply is left to the runner's backoff", async () => {
    sim.faults.malformed("garbage");
    const connections = sim.connections;
    await driver.read!(ctx());
    await eventually(() => !driver.connected, 10_000, "the link closed");
    // the old connection, and at most one fresh one that took no reply
    expect(sim.connections - connections).toBeLessThanOrEqual(2);
  });
});
