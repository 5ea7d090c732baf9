/**
 * The runner's snapshot reads (issue 8.3) with the real Modbus driver and simulator: the reads
 * come in the same onSamples call as the samples that asked for them, marked snapshotRead, and
 * deliveries keep arrival order while a snapshot read is slow (another group's polls that end
 * meanwhile wait behind it); a device that stops answering gives bad reads with the reason.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { DriverRunner } from "../../src/app/driver-runner.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";

let sim: ModbusSimulator;

beforeAll(async () => {
  sim = await startModbusSimulator({ port: 0 });
});
afterAll(async () => {
  await sim?.close();
});

function runner(deliveries: TagSample[][]): DriverRunner {
  const device = deviceSchema.parse({
    id: "plc-1",
    protocol: "modbus-tcp",
    host: "127.0.0.1",
    port: sim.port,
    request_timeout: "300ms",
    max_in_flight: 4, // the slow snapshot read must not hold up the other group
    tags: [
      { name: "done", address: "C5", type: "bool", poll_interval: "50ms" },
      { name: "ticks", address: "HR0", type: "uint16", poll_interval: "20ms" },
      { name: "snap", address: "HR100", type: "uint16", poll_interval: "10s" },
    ],
  });
  return new DriverRunner({
    driver: createDriver(device, { dataDir: "/nonexistent" }),
    log: silentLogger(),
    onSamples: (s) => deliveries.push(s),
    // the engine's role, reduced: `done` true asks for `snap`
    snapshotTags: (samples) => (samples.some((s) => s.tag === "done" && s.value) ? ["snap"] : []),
    reconnect: { minMs: 50, maxMs: 200 },
  });
}

const withRead = (deliveries: TagSample[][]) =>
  deliveries.filter((d) => d.some((s) => s.snapshotRead));

describe("DriverRunner snapshot reads", () => {
  it("delivers the reads with their samples in one call, in arrival order", async () => {
    sim.setBit(1, "C5", false);
    sim.setRegisters(1, "HR100", [7]);
    const deliveries: TagSample[][] = [];
    const r = runner(deliveries);
    r.start();
    try {
      await eventually(() => deliveries.some((d) => d[0]?.tag === "done"), 5000, "a first poll");
      sim.faults.delay(250, { functionCode: 3, address: 100 });
      sim.setRegisters(1, "HR100", [42]);
      sim.setBit(1, "C5", true);
      await eventually(() => withRead(deliveries).length > 0, 5000, "a snapshot read");
      await eventually(() => deliveries.length > deliveries.indexOf(withRead(deliveries)[0]!) + 2);
    } finally {
      sim.setBit(1, "C5", false);
      sim.faults.clear();
      await r.stop();
    }
    const hit = withRead(deliveries)[0]!;
    expect(hit.filter((s) => s.snapshotRead)).toMatchObject([
      { tag: "snap", value: 42, quality: "good" },
    ]);
    expect(hit.filter((s) => !s.snapshotRead).map((s) => [s.tag, s.value])).toEqual([
      ["done", true],
    ]);
    // every delivery's own samples were read no earlier than the ones delivered before it
    const readAt = deliveries.map((d) =>
      Math.max(...d.filter((s) => !s.snapshotRead).map((s) => s.readTime)),
    );
    for (let i = 1; i < readAt.length; i++)
      expect(readAt[i]!).toBeGreaterThanOrEqual(readAt[i - 1]!);
  });

  it("a snapshot read that gets no answer is bad with the reason, never an older value", async () => {
    sim.setBit(1, "C5", false);
    const deliveries: TagSample[][] = [];
    const r = runner(deliveries);
    r.start();
    try {
      await eventually(() => deliveries.some((d) => d[0]?.tag === "done"), 5000, "a first poll");
      sim.faults.silence({ functionCode: 3, address: 100 });
      sim.setBit(1, "C5", true);
      await eventually(() => withRead(deliveries).length > 0, 5000, "a snapshot read");
    } finally {
      sim.setBit(1, "C5", false);
      sim.faults.clear();
      await r.stop();
    }
    const read = withRead(deliveries)[0]!.find((s) => s.snapshotRead)!;
    expect(read).toMatchObject({ tag: "snap", value: null, quality: "bad" });
    expect(read.reason).toMatch(/read holding 100\+1 .*(no response|timed? ?out)/i);
  });
});
