/**
 * Issue 13.5: what the engine or the sink throws inside a poll is theirs. With the real Modbus
 * driver and simulator, a samples consumer that throws at every poll (an engine or sink bug
 * stands in as the consumer) leaves the PLC connected (one connection at the simulator, no
 * status but "connected") and is logged with the part that threw, never as "driver read
 * threw"; an engine whose snapshot query throws still gets its samples.
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { type DeviceStatus, DriverRunner } from "../../src/app/driver-runner.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { eventually } from "../support/resources.ts";

let sim: ModbusSimulator;

beforeAll(async () => {
  sim = await startModbusSimulator({ port: 0, recordRequests: false });
});
afterAll(async () => {
  await sim?.close();
});

function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: "debug" },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log, lines };
}

function runner(
  options: Pick<ConstructorParameters<typeof DriverRunner>[0], "onSamples" | "snapshotTags">,
  log: ReturnType<typeof captureLog>["log"],
  statuses: DeviceStatus[],
) {
  const device = deviceSchema.parse({
    id: "plc-1",
    protocol: "modbus-tcp",
    host: "127.0.0.1",
    port: sim.port,
    poll_interval: "20ms",
    tags: [{ name: "counter", address: "HR0", type: "uint16" }],
  });
  return new DriverRunner({
    driver: createDriver(device, { dataDir: "/nonexistent" }),
    log,
    onStatus: (s) => statuses.push(s),
    reconnect: { minMs: 20, maxMs: 100 },
    ...options,
  });
}

describe("DriverRunner and the failures of its consumers", () => {
  it("point 5: an engine or sink exception inside a poll is attributed and does not reconnect the PLC", async () => {
    const before = sim.connections;
    const { log, lines } = captureLog();
    const statuses: DeviceStatus[] = [];
    let polls = 0;
    const r = runner(
      {
        onSamples: () => {
          polls += 1;
          throw new TypeError("cannot read properties of undefined (reading 'value')");
        },
      },
      log,
      statuses,
    );
    r.start();
    try {
      await eventually(() => polls >= 10, 10_000, "ten polls whose samples the consumer refused");
    } finally {
      await r.stop();
    }
    expect(sim.connections - before).toBe(1);
    expect(statuses.map((s) => s.status)).toEqual(["connected"]);
    expect(lines.filter((l) => String(l.msg).includes("driver read threw"))).toEqual([]);
    const blamed = lines.filter((l) => l.level === 50);
    expect(blamed.length).toBeGreaterThanOrEqual(10);
    for (const line of blamed) {
      expect(line).toMatchObject({
        part: "samples consumer",
        msg: "samples not taken: the engine or the sink threw, not the device; the connection stays",
        err: { message: "cannot read properties of undefined (reading 'value')" },
      });
    }
  });

  it("point 5: samples whose snapshot query throws are still delivered, the engine named", async () => {
    const { log, lines } = captureLog();
    const statuses: DeviceStatus[] = [];
    const delivered: TagSample[][] = [];
    const r = runner(
      {
        onSamples: (s) => delivered.push(s),
        snapshotTags: () => {
          throw new RangeError("trigger rule out of range");
        },
      },
      log,
      statuses,
    );
    r.start();
    try {
      await eventually(() => delivered.length >= 5, 10_000, "five deliveries");
    } finally {
      await r.stop();
    }
    expect(delivered[0]).toMatchObject([{ device: "plc-1", tag: "counter", quality: "good" }]);
    expect(statuses.map((s) => s.status)).toEqual(["connected"]);
    expect(lines.filter((l) => l.level === 50)[0]).toMatchObject({
      part: "engine",
      msg: "snapshot query threw; samples delivered without snapshot reads",
    });
  });
});
