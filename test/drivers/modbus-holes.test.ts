/**
 * Issue 13 point 9: registers that do not exist, and devices that take fewer registers per
 * request, against the bundled simulator given holes and a smaller limit.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import type { ModbusDriver } from "../../src/drivers/modbus/driver.ts";
import {
  byTag,
  capturingLogger,
  context,
  driverFor,
  type LogLine,
  seen,
  WARN,
} from "./modbus-map-support.ts";

const HOLE_LOG = "Modbus registers do not exist: reads now go around them";
const SIZE_LOG = "Modbus device takes smaller requests: learned its limit";

const warnings = (lines: readonly LogLine[], msg: string) =>
  lines.filter((l) => l.msg === msg && l.level === WARN);

/** Three tags, the middle one on HR101 (a hole in some of the tests). */
const AROUND_HR101 = [
  { name: "before", address: "HR100" },
  { name: "ghost", address: "HR101" },
  { name: "after", address: "HR102" },
];

describe("Modbus register maps with holes and smaller request sizes", () => {
  let sim: ModbusSimulator | undefined;
  let driver: ModbusDriver | undefined;
  afterEach(async () => {
    await driver?.close();
    await sim?.close();
    driver = undefined;
    sim = undefined;
  });

  it("point 9: a merged read over HR101 and HR105, which do not exist, is split; the holes are remembered and logged once", async () => {
    sim = await startModbusSimulator({ port: 0, holes: ["HR101", "HR105"] });
    sim.setRegisters(1, "HR100", [10, 0, 12, 13, 0, 0, 16]);
    const { log, lines } = capturingLogger();
    const ctx = context(log);
    driver = driverFor(sim, {
      tags: [
        { name: "a", address: "HR100" },
        { name: "b", address: "HR102" },
        { name: "c", address: "HR103" },
        { name: "d", address: "HR106" },
      ],
    });
    await driver.connect(ctx);
    const first = byTag(await driver.read(ctx));
    // the planned read, refused with exception 2, then its parts and the gap registers alone
    expect(seen(sim)[0]).toBe("3:100+7");
    expect(Object.values(first).map((s) => [s.tag, s.quality, s.value])).toEqual([
      ["a", "good", 10],
      ["b", "good", 12],
      ["c", "good", 13],
      ["d", "good", 16],
    ]);
    const logged = warnings(lines, HOLE_LOG);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ unit: 1, missing: ["HR101", "HR105"] });

    // from now on: what is contiguous, merged; nothing spans a hole; no exception
    for (let poll = 0; poll < 3; poll++) {
      sim.clearRequests();
      const samples = await driver.read(ctx);
      expect(seen(sim)).toEqual(["3:100+1", "3:102+2", "3:106+1"]);
      expect(samples.every((s) => s.quality === "good")).toBe(true);
    }
    expect(warnings(lines, HOLE_LOG)).toHaveLength(1);
    expect(sim.faults.applied.exception).toBe(0);
  });

  it("point 9: a tag whose own register is missing is bad with that reason and a code, and only that tag", async () => {
    sim = await startModbusSimulator({ port: 0, holes: ["HR101"] });
    sim.setRegisters(1, "HR100", [7, 0, 9]);
    const ctx = context(capturingLogger().log);
    driver = driverFor(sim, { tags: AROUND_HR101 });
    await driver.connect(ctx);
    for (let poll = 0; poll < 2; poll++) {
      sim.clearRequests();
      const samples = byTag(await driver.read(ctx));
      expect(samples.before).toMatchObject({ quality: "good", value: 7 });
      expect(samples.after).toMatchObject({ quality: "good", value: 9 });
      expect(samples.ghost).toMatchObject({
        quality: "bad",
        value: null,
        reasonCode: "MODBUS_EXCEPTION",
      });
      expect(samples.ghost!.reason).toMatch(
        /^HR101 does not exist on unit 1: the device answers exception 2 \(illegal data address\)/,
      );
    }
    // the missing register is asked alone (so it can come back), never merged: no new probe
    expect(seen(sim)).toEqual(["3:100+1", "3:101+1", "3:102+1"]);
  });

  it("point 9: a missing register that answers again is merged again, without a reconnect", async () => {
    sim = await startModbusSimulator({ port: 0 });
    sim.setRegisters(1, "HR100", [7, 8, 9]);
    const ctx = context(capturingLogger().log);
    driver = driverFor(sim, { tags: AROUND_HR101 });
    await driver.connect(ctx);
    sim.faults.exception(2, { address: 101 });
    expect(byTag(await driver.read(ctx)).ghost!.quality).toBe("bad");
    sim.clearRequests();
    expect(byTag(await driver.read(ctx)).ghost!.quality).toBe("bad");
    expect(seen(sim)).toEqual(["3:100+1", "3:101+1", "3:102+1"]);
    sim.faults.clear(); // a new PLC program maps HR101
    expect(byTag(await driver.read(ctx)).ghost).toMatchObject({ quality: "good", value: 8 });
    sim.clearRequests();
    const samples = await driver.read(ctx);
    expect(samples.every((s) => s.quality === "good")).toBe(true);
    expect(seen(sim)).toEqual(["3:100+3"]);
    expect(sim.connections).toBe(1);
  });

  it("point 9: a device that refuses reads of more than 64 registers: halved until it answers, the size kept and logged with max_registers_per_request", async () => {
    sim = await startModbusSimulator({ port: 0, maxRegistersPerRequest: 64 });
    const words = Array.from({ length: 100 }, (_, i) => 1000 + i);
    sim.setRegisters(1, "HR0", words);
    const { log, lines } = capturingLogger();
    const ctx = context(log);
    driver = driverFor(sim, {
      tags: words.map((_, i) => ({ name: `t${i}`, address: `HR${i}` })),
    });
    await driver.connect(ctx);
    const first = await driver.read(ctx);
    expect(seen(sim)).toEqual(["3:0+100", "3:0+50", "3:50+50"]);
    expect(first).toHaveLength(100);
    expect(
      first.every((s) => s.quality === "good" && s.value === 1000 + Number(s.tag.slice(1))),
    ).toBe(true);
    const logged = warnings(lines, SIZE_LOG);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      unit: 1,
      refused: 100,
      learned: 50,
      option: "max_registers_per_request",
    });
    sim.clearRequests();
    const second = await driver.read(ctx);
    expect(seen(sim)).toEqual(["3:0+50", "3:50+50"]);
    expect(second.every((s) => s.quality === "good")).toBe(true);
    expect(driver.describePlan()).toContain(
      "unit 1 refused a read of 100 registers: reading at most 50 per request (pin it with max_registers_per_request: 50)",
    );
  });

  it("point 9: holes and a smaller size together are found in one poll; a reconnect learns them again without a second warning", async () => {
    sim = await startModbusSimulator({ port: 0, holes: ["HR40"], maxRegistersPerRequest: 30 });
    sim.setRegisters(
      1,
      "HR0",
      Array.from({ length: 80 }, (_, i) => i),
    );
    const { log, lines } = capturingLogger();
    const ctx = context(log);
    driver = driverFor(sim, {
      tags: Array.from({ length: 80 }, (_, i) => ({ name: `t${i}`, address: `HR${i}` })),
    });
    await driver.connect(ctx);
    const first = byTag(await driver.read(ctx));
    expect(first.t40).toMatchObject({ quality: "bad", reasonCode: "MODBUS_EXCEPTION" });
    const good = Object.values(first).filter((s) => s.tag !== "t40");
    expect(good.every((s) => s.quality === "good" && s.value === Number(s.tag.slice(1)))).toBe(
      true,
    );
    sim.clearRequests();
    await driver.read(ctx);
    const steady = sim.requests;
    expect(steady.every((r) => r.quantity <= 30)).toBe(true);
    // HR40 only in its own request, asked alone
    const onHole = steady.filter((r) => r.address <= 40 && 40 < r.address + r.quantity);
    expect(onHole.map((r) => `${r.address}+${r.quantity}`)).toEqual(["40+1"]);
    expect(warnings(lines, HOLE_LOG)).toHaveLength(1);
    expect(warnings(lines, SIZE_LOG)).toHaveLength(1);

    // a new connection: the device may have another map; learned again, not warned again
    await driver.connect(ctx);
    sim.clearRequests();
    const again = byTag(await driver.read(ctx));
    expect(seen(sim)[0]).toBe("3:0+80");
    expect(again.t40!.quality).toBe("bad");
    expect(warnings(lines, HOLE_LOG)).toHaveLength(1);
    expect(lines.filter((l) => l.msg === HOLE_LOG).length).toBe(2);
  });
});
