/**
 * Issue 13 point 3, the Modbus driver's part: a tag-map change is applied to the live
 * connection (the reads are planned again), counted at the simulator; a change of connection
 * settings resolves false and leaves the driver as it was.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { ModbusDriver } from "../../src/drivers/modbus/driver.ts";
import { eventually } from "../support/resources.ts";
import { byTag, capturingLogger, context, seen, tcpDevice } from "./modbus-map-support.ts";

const TAGS = [
  { name: "speed", address: "HR0" },
  { name: "level", address: "HR1" },
];

describe("Modbus tag maps changed on the live connection", () => {
  let sim: ModbusSimulator | undefined;
  let driver: ModbusDriver | undefined;
  afterEach(async () => {
    await driver?.close();
    await sim?.close();
    driver = undefined;
    sim = undefined;
  });

  async function connected(fields: Record<string, unknown> = {}) {
    sim = await startModbusSimulator({ port: 0 });
    sim.setRegisters(1, "HR0", [5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 10]);
    const ctx = context(capturingLogger().log);
    const device = tcpDevice(sim, { tags: TAGS, ...fields });
    driver = new ModbusDriver(device);
    await driver.connect(ctx);
    await driver.read(ctx);
    expect(sim.connections).toBe(1);
    return { ctx, device };
  }

  it("point 3: adding a tag re-plans the reads on the same connection (1 connection at the PLC)", async () => {
    const { ctx, device } = await connected();
    const next = tcpDevice(sim!, { tags: [...TAGS, { name: "flow", address: "HR10" }] });
    expect(await driver!.updateTags(next, ctx)).toBe(true);
    expect(driver!.pollGroups().flatMap((g) => g.tags)).toEqual(["speed", "level", "flow"]);
    sim!.clearRequests();
    const samples = byTag(await driver!.read(ctx));
    expect(samples.flow).toMatchObject({ quality: "good", value: 10 });
    expect(samples.speed).toMatchObject({ quality: "good", value: 5 });
    expect(seen(sim!)).toEqual(["3:0+2", "3:10+1"]);
    expect(sim!.connections).toBe(1);
    expect(driver!.connected).toBe(true);
    expect(device.tags).toHaveLength(2); // the old config is not touched
  });

  it("point 3: removed, moved and re-timed tags, a new max_gap and byte order apply live too", async () => {
    const { ctx } = await connected();
    const next = tcpDevice(sim!, {
      tags: [{ name: "level", address: "HR10", poll_interval: "250ms" }],
      max_gap: 0,
      byte_order: "CDAB",
    });
    expect(await driver!.updateTags(next, ctx)).toBe(true);
    expect(driver!.pollGroups().map((g) => [g.interval, g.tags])).toEqual([[250, ["level"]]]);
    sim!.clearRequests();
    const samples = await driver!.read(ctx);
    expect(samples).toEqual([expect.objectContaining({ tag: "level", value: 10 })]);
    expect(seen(sim!)).toEqual(["3:10+1"]);
    expect(sim!.connections).toBe(1);
  });

  it.each([
    ["port", { port: 1 }],
    ["host", { host: "localhost" }],
    ["request_timeout", { request_timeout: "2s" }],
    ["connect_timeout", { connect_timeout: "5s" }],
    ["transaction_ids", { transaction_ids: "ignore" }],
    ["max_in_flight", { max_in_flight: 4 }],
    ["reconnect_max", { reconnect_max: "1m" }],
  ])(
    "point 3: a change of %s needs a new connection: false, nothing touched",
    async (_key, change) => {
      const { ctx, device } = await connected();
      const next = deviceSchema.parse({
        ...tcpInput(sim!),
        ...change,
        tags: [...TAGS, { name: "flow", address: "HR10" }],
      });
      expect(await driver!.updateTags(next, ctx)).toBe(false);
      // the old plan still reads, on the same connection
      expect(driver!.pollGroups().flatMap((g) => g.tags)).toEqual(device.tags.map((t) => t.name));
      const samples = await driver!.read(ctx);
      expect(samples.map((s) => s.tag)).toEqual(["speed", "level"]);
      expect(sim!.connections).toBe(1);
    },
  );

  it("point 3: a serial line change or another protocol needs a new connection; a tag change on a serial bus does not", async () => {
    const rtu = (fields: Record<string, unknown>) =>
      deviceSchema.parse({
        id: "plc",
        protocol: "modbus-rtu",
        serial: { path: "/dev/ttyUSB0", baud_rate: 19200 },
        tags: TAGS,
        ...fields,
      });
    // created, never connected: updateTags needs no connection to decide
    driver = new ModbusDriver(rtu({}) as never);
    const ctx = context(capturingLogger().log);
    expect(
      await driver.updateTags(rtu({ serial: { path: "/dev/ttyUSB0", baud_rate: 9600 } }), ctx),
    ).toBe(false);
    expect(await driver.updateTags(rtu({ serial: { path: "/dev/ttyUSB1" } }), ctx)).toBe(false);
    const overTcp = deviceSchema.parse({
      id: "plc",
      protocol: "modbus-rtu-over-tcp",
      host: "10.0.0.5",
      tags: TAGS,
    });
    expect(await driver.updateTags(overTcp, ctx)).toBe(false);
    expect(await driver.updateTags(rtu({ id: "other" }), ctx)).toBe(false);
    expect(
      await driver.updateTags(rtu({ tags: [...TAGS, { name: "flow", address: "HR10" }] }), ctx),
    ).toBe(true);
    expect(driver.pollGroups().flatMap((g) => g.tags)).toEqual(["speed", "level", "flow"]);
  });

  it("point 3: a read on the wire when the map changes never labels an old reading with the new definition", async () => {
    const { ctx } = await connected();
    sim!.faults.delay(300, { address: 0 });
    const reading = driver!.read(ctx);
    await eventually(() => sim!.requests.some((r) => r.address === 0), 5000, "the read sent");
    // speed moves from HR0 (5) to HR10 (10) while HR0's reply is on its way
    const next = tcpDevice(sim!, { tags: [{ name: "speed", address: "HR10" }, TAGS[1]!] });
    expect(await driver!.updateTags(next, ctx)).toBe(true);
    const during = await reading;
    expect(during.find((s) => s.tag === "speed")).toBeUndefined();
    expect(during.find((s) => s.tag === "level")).toMatchObject({ quality: "good", value: 6 });
    sim!.faults.clear();
    const after = await driver!.read(ctx);
    expect(after.find((s) => s.tag === "speed")).toMatchObject({ quality: "good", value: 10 });
  });

  it("point 3: a tag that cannot be planned resolves false and keeps the running plan", async () => {
    const { ctx } = await connected({ max_registers_per_request: 2 });
    const next = tcpDevice(sim!, {
      tags: [...TAGS, { name: "wide", address: "HR20", type: "float64" }],
      max_registers_per_request: 2,
    });
    expect(await driver!.updateTags(next, ctx)).toBe(false);
    expect(driver!.pollGroups().flatMap((g) => g.tags)).toEqual(["speed", "level"]);
  });

  it("point 3: what the device's map taught is kept across a tag-map change on the live connection", async () => {
    sim = await startModbusSimulator({ port: 0, holes: ["HR1"] });
    const ctx = context(capturingLogger().log);
    const tags = [
      { name: "a", address: "HR0" },
      { name: "b", address: "HR2" },
    ];
    driver = new ModbusDriver(tcpDevice(sim, { tags }));
    await driver.connect(ctx);
    await driver.read(ctx);
    const next = tcpDevice(sim, { tags: [...tags, { name: "c", address: "HR3" }] });
    expect(await driver.updateTags(next, ctx)).toBe(true);
    sim.clearRequests();
    const samples = await driver.read(ctx);
    expect(samples.every((s) => s.quality === "good")).toBe(true);
    expect(seen(sim)).toEqual(["3:0+1", "3:2+2"]);
    expect(sim.connections).toBe(1);
  });
});

function tcpInput(sim: ModbusSimulator) {
  return {
    id: "plc",
    protocol: "modbus-tcp",
    host: "127.0.0.1",
    port: sim.port,
    request_timeout: "1s",
  };
}
