/**
 * The read planner at scale, counted at the simulator: 10,000 tags on one device are read in as
 * few requests as the protocol allows.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import { silentLogger } from "../../src/lib/logger.ts";

const ctx = () => ({ signal: new AbortController().signal, log: silentLogger() });

async function readOnceCounting(sim: ModbusSimulator, tags: object[]) {
  const device = deviceSchema.parse({
    id: "big",
    protocol: "modbus-tcp",
    host: "127.0.0.1",
    port: sim.port,
    tags,
  });
  const driver = createDriver(device);
  await driver.connect(ctx());
  sim.clearRequests();
  try {
    const samples = await driver.read!(ctx());
    return { samples, requests: [...sim.requests] };
  } finally {
    await driver.close();
  }
}

describe("read planning counted at the simulator", () => {
  let sim: ModbusSimulator;
  beforeAll(async () => {
    sim = await startModbusSimulator({ port: 0 });
  });
  afterAll(async () => {
    await sim.close();
  });

  it("reads 10,000 register tags in ceil(registers / 125) requests", async () => {
    const words = Array.from({ length: 10_000 }, (_, i) => i);
    sim.setRegisters(1, "HR0", words);
    const tags = words.map((i) => ({ name: `t${i}`, address: `HR${i}`, type: "uint16" }));
    const { samples, requests } = await readOnceCounting(sim, tags);
    expect(requests).toHaveLength(Math.ceil(10_000 / 125));
    expect(requests.every((r) => r.functionCode === 3 && r.quantity <= 125)).toBe(true);
    expect(samples).toHaveLength(10_000);
    expect(samples.every((s, i) => s.quality === "good" && s.value === i)).toBe(true);
  });

  it("reads 10,000 tags spread over the four tables with gaps in ceil(span / limit) requests each", async () => {
    // 4,000 holding registers every other address (gap 1), 4,000 input-register bits
    // (16 per register), 1,000 coils and 1,000 discrete inputs every third address
    const tags = [
      ...Array.from({ length: 4000 }, (_, i) => ({
        name: `hr${i}`,
        address: `HR${i * 2}`,
        type: "int16",
      })),
      ...Array.from({ length: 4000 }, (_, i) => ({
        name: `bit${i}`,
        address: `IR${Math.floor(i / 16)}.${i % 16}`,
      })),
      ...Array.from({ length: 1000 }, (_, i) => ({ name: `c${i}`, address: `C${i * 3}` })),
      ...Array.from({ length: 1000 }, (_, i) => ({ name: `d${i}`, address: `DI${i * 3}` })),
    ];
    const { samples, requests } = await readOnceCounting(sim, tags);
    const count = (fc: number) => requests.filter((r) => r.functionCode === fc).length;
    expect(count(3)).toBe(Math.ceil(7999 / 125)); // HR0..HR7998
    expect(count(4)).toBe(Math.ceil(250 / 125)); // IR0..IR249 hold the 4,000 bits
    expect(count(1)).toBe(Math.ceil(2998 / 2000)); // C0..C2997
    expect(count(2)).toBe(Math.ceil(2998 / 2000));
    expect(requests).toHaveLength(count(1) + count(2) + count(3) + count(4));
    expect(samples).toHaveLength(10_000);
    expect(samples.every((s) => s.quality === "good")).toBe(true);
  });
});
