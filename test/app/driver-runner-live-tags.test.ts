/**
 * Issue 13.3, the runner's part, with the real Modbus driver and simulator: updateTags with a
 * tag added and a poll interval changed applies on the live connection (one connection at the
 * simulator, no status but "connected"), the poll groups restart with the driver's new ones
 * (the new tag is read, the removed one no more); a change of connection settings answers
 * false and leaves the runner as it was.
 *
 * Needs the Modbus driver's updateTags (branch issue13-modbus-map).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { type DeviceStatus, DriverRunner } from "../../src/app/driver-runner.ts";
import { type DeviceConfig, deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";

let sim: ModbusSimulator;

beforeAll(async () => {
  sim = await startModbusSimulator({ port: 0, recordRequests: false });
  sim.setRegisters(1, "HR0", [7]);
  sim.setRegisters(1, "HR1", [8]);
  sim.setRegisters(1, "HR2", [9]);
});
afterAll(async () => {
  await sim?.close();
});

function deviceOf(tags: object[], port: number, ioThread: boolean): DeviceConfig {
  return deviceSchema.parse({
    id: "plc-1",
    protocol: "modbus-tcp",
    host: "127.0.0.1",
    port,
    poll_interval: "30ms",
    io_thread: ioThread,
    tags,
  });
}

const a = { name: "a", address: "HR0", type: "uint16" };
const b = { name: "b", address: "HR1", type: "uint16" };
const c = { name: "c", address: "HR2", type: "uint16" };

// on the main thread, and on the device's own I/O thread (the thread applies the map and
// polls the new groups at its own rate; the host's planner follows)
describe.each([false, true])("DriverRunner.updateTags (io_thread: %s)", (ioThread) => {
  const device = (tags: object[], port = sim.port) => deviceOf(tags, port, ioThread);

  it("point 3: applies a tag map on the live connection and polls the new groups", async () => {
    const before = sim.connections;
    const seen: TagSample[] = [];
    const statuses: DeviceStatus[] = [];
    const runner = new DriverRunner({
      driver: createDriver(device([a, b]), { dataDir: "/nonexistent" }),
      log: silentLogger(),
      onSamples: (s) => seen.push(...s),
      onStatus: (s) => statuses.push(s),
      reconnect: { minMs: 50, maxMs: 200 },
    });
    const tags = (from: number) => new Set(seen.slice(from).map((s) => s.tag));
    runner.start();
    try {
      await eventually(() => tags(0).has("b"), 10_000, "the first polls");
      // c added, b removed, and a polled at its own interval
      const next = device([{ ...a, poll_interval: "20ms" }, c]);
      expect(await runner.updateTags(next, 5000)).toBe(true);
      const mark = seen.length;
      await eventually(() => tags(mark).has("c"), 10_000, "the added tag");
      const settled = seen.length;
      await eventually(() => seen.length > settled + 10, 10_000, "more polls");
      expect([...tags(settled)].sort()).toEqual(["a", "c"]);
      expect(seen.find((s) => s.tag === "c")).toMatchObject({ value: 9, quality: "good" });

      // another port is another connection: not applied, nothing changed
      expect(await runner.updateTags(device([a, c], sim.port + 1), 5000)).toBe(false);
      const later = seen.length;
      await eventually(() => seen.length > later + 5, 10_000, "polls after the refusal");
      expect(seen.slice(later).every((s) => s.quality === "good")).toBe(true);
    } finally {
      await runner.stop();
    }
    expect(sim.connections - before).toBe(1);
    expect(statuses.map((s) => s.status)).toEqual(["connected"]);
  });
});
