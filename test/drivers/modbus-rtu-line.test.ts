/**
 * The RTU line guard (line-guard.ts) at its edges, over RTU over TCP against the simulator: a
 * line that never goes quiet is closed, a dead unit on the bus is bad without shifting the
 * others, and an exception reply keeps the line in step.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { Driver, TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";

const ctx = () => ({ signal: new AbortController().signal, log: silentLogger() });
const byTag = (samples: readonly TagSample[]) =>
  Object.fromEntries(samples.map((s) => [s.tag, s])) as Record<string, TagSample>;

describe("Modbus RTU line guard", () => {
  let sim: ModbusSimulator;
  let driver: Driver;

  beforeAll(async () => {
    sim = await startModbusSimulator({ port: 0, framing: "rtu-over-tcp", units: [1] });
    sim.setRegisters(1, "HR0", [111]);
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
        id: "bus",
        protocol: "modbus-rtu-over-tcp",
        host: "127.0.0.1",
        port: sim.port,
        request_timeout: "100ms",
        max_gap: 0,
        tags: [
          { name: "a", address: "HR0" },
          { name: "b", address: "HR10" },
          { name: "dead", address: "HR0", unit_id: 2 },
        ],
      }),
    );
    await driver.connect(ctx());
    sim.clearRequests();
  });

  it("closes a line in doubt that never goes quiet, then reads good after reconnecting", async () => {
    // past the drain of a new link first
    expect(byTag(await driver.read!(ctx())).a).toMatchObject({ quality: "good", value: 111 });
    sim.faults.silence({ address: 0, unitId: 1 });
    // another unit's frames, every 30 ms, as if a second master shared the bus
    const chatter = setInterval(() => sim.inject({ unitId: 5, functionCode: 3, values: [9] }), 30);
    try {
      const samples = byTag(await driver.read!(ctx()));
      // the dead unit's timeout of the first read left the line in doubt: the drain never ends
      expect(samples.a!.reason).toMatch(/the line did not go quiet within 2000 ms/);
      expect(samples.b!.reason).toMatch(/not connected: the line did not go quiet/);
      expect(driver.connected).toBe(false);
      for (const s of Object.values(samples)) expect(s.quality).toBe("bad");
    } finally {
      clearInterval(chatter);
    }
    sim.faults.clear();
    await driver.connect(ctx());
    const after = byTag(await driver.read!(ctx()));
    expect(after.a).toMatchObject({ quality: "good", value: 111 });
    expect(after.b).toMatchObject({ quality: "good", value: 222 });
  });

  it("reads the live units right while a dead unit on the bus times out, then skips it", async () => {
    for (let i = 0; i < 6; i++) {
      const samples = byTag(await driver.read!(ctx()));
      expect(samples.a).toMatchObject({ quality: "good", value: 111 });
      expect(samples.b).toMatchObject({ quality: "good", value: 222 });
      expect(samples.dead!.quality).toBe("bad");
    }
    // the first poll's request and its one retry (the same silence), the second poll's
    // timeout (two in a row), then skipped until its retry time
    expect(sim.requests.filter((r) => r.unitId === 2)).toHaveLength(3);
  });

  it("takes an exception reply as the device's answer: bad with its name, the line in step", async () => {
    sim.faults.exception(2, { address: 10 });
    const samples = byTag(await driver.read!(ctx()));
    expect(samples.b!.reason).toMatch(/exception 2 \(illegal data address\)/);
    expect(samples.a).toMatchObject({ quality: "good", value: 111 });
    expect(driver.connected).toBe(true);
    sim.faults.clear();
    expect(byTag(await driver.read!(ctx())).b).toMatchObject({ quality: "good", value: 222 });
  });
});
