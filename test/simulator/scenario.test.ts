/**
 * Scenarios: determinism (seed + elapsed time), the packaging line's behaviour over a long
 * run, frozen values, real-time ticks, custom and broken scenario files, and config/demo.yaml
 * reading exactly what the packaging line serves, with the right types and byte orders.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { resolveModbusTag } from "../../src/config/modbus-tags.ts";
import { configSchema } from "../../src/config/schema/root.ts";
import { decodeRegisters } from "../../src/drivers/modbus/codec.ts";
import { isGatewayError } from "../../src/lib/errors.ts";
import { settle, until } from "./helpers.ts";

const sims: ModbusSimulator[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

async function line(seed = 1, tickMs?: number): Promise<ModbusSimulator> {
  const sim = await startModbusSimulator({
    scenario: "packaging-line",
    seed,
    ...(tickMs === undefined ? {} : { tickMs }),
  });
  sims.push(sim);
  return sim;
}

/** Everything the packaging line writes, raw. */
function snapshot(sim: ModbusSimulator) {
  return {
    hr: sim.getRegisters(1, "HR100", 5),
    temperature: sim.getRegisters(1, "IR10", 2),
    batch: sim.getRegisters(1, "HR200", 10),
    done: sim.getBit(1, "C5"),
  };
}

function decoded(sim: ModbusSimulator) {
  const words = (a: string, n: number) => sim.getRegisters(1, a, n);
  return {
    state: words("HR100", 1)[0]!,
    good: decodeRegisters(words("HR101", 2), { type: "uint32", byteOrder: "ABCD" }) as number,
    scrap: decodeRegisters(words("HR103", 2), { type: "uint32", byteOrder: "ABCD" }) as number,
    temperature: decodeRegisters(words("IR10", 2), {
      type: "float32",
      byteOrder: "CDAB",
    }) as number,
    batch: decodeRegisters(words("HR200", 10), {
      type: "string",
      byteOrder: "ABCD",
      length: 10,
    }) as string,
    done: sim.getBit(1, "C5"),
  };
}

describe("scenario determinism", () => {
  it("gives the same values for the same seed and elapsed time, however it is advanced", async () => {
    const [a, b, c] = [await line(7), await line(7), await line(8)];
    expect(snapshot(a)).toEqual(snapshot(b));
    for (let i = 0; i < 7; i++) a.advance(13_700);
    b.advance(95_900);
    c.advance(95_900);
    expect(snapshot(a)).toEqual(snapshot(b));
    expect(snapshot(c)).not.toEqual(snapshot(a));
  });

  it("does not move in manual mode unless advanced", async () => {
    const sim = await line(1);
    const before = snapshot(sim);
    await settle(150);
    expect(snapshot(sim)).toEqual(before);
    sim.advance(99);
    expect(snapshot(sim)).toEqual(before);
    sim.advance(1);
    expect(snapshot(sim)).not.toEqual(before);
  });

  it("moves by itself with tickMs", async () => {
    const sim = await line(1, 10);
    const before = snapshot(sim).temperature;
    await until(() => snapshot(sim).temperature.join() !== before.join(), "a temperature change");
  });
});

describe("the packaging line", () => {
  it("runs a plausible hour: states, rising counts, batches with a done pulse", async () => {
    const sim = await line(3);
    const states = new Set<number>();
    const batches: string[] = [];
    let { good, scrap } = decoded(sim);
    let previous = decoded(sim);
    let pulses = 0;
    for (let t = 0; t < 3_600_000; t += 100) {
      sim.advance(100);
      const now = decoded(sim);
      states.add(now.state);
      expect(now.good).toBeGreaterThanOrEqual(good);
      expect(now.scrap).toBeGreaterThanOrEqual(scrap);
      if (previous.state !== 1 && now.state !== 1) expect(now.good).toBe(good);
      expect(now.temperature).toBeGreaterThan(20);
      expect(now.temperature).toBeLessThan(75);
      if (now.done && !previous.done) pulses += 1;
      if (now.batch !== previous.batch) {
        // The id moves on when the done pulse ends, so a trigger on C5 sees the finished batch.
        expect(previous.done).toBe(true);
        expect(now.done).toBe(false);
        batches.push(now.batch);
      }
      ({ good, scrap } = now);
      previous = now;
    }
    expect([...states].sort()).toEqual([0, 1, 2]);
    expect(good).toBeGreaterThan(3000);
    expect(scrap).toBeGreaterThan(0);
    expect(scrap).toBeLessThan(good / 10);
    expect(pulses).toBeGreaterThanOrEqual(Math.floor(good / 50) - 1);
    expect(pulses).toBeLessThanOrEqual(Math.floor(good / 50));
    expect(batches[0]).toBe("B2026-0002");
    expect(batches.at(-1)).toBe(`B2026-${String(batches.length + 1).padStart(4, "0")}`);
  });

  it("leaves frozen values alone while the rest moves on", async () => {
    const sim = await line(1);
    sim.setValue(1, "HR101", 999, { type: "uint32", byteOrder: "ABCD" });
    sim.freeze(1, "HR102");
    sim.setBit(1, "C5", true);
    sim.freeze(1, "C5");
    sim.setRegisters(1, "IR10", [0, 0]);
    sim.freeze(1, "IR11");
    sim.advance(120_000);
    const now = decoded(sim);
    expect(now.good).toBe(999);
    expect(now.done).toBe(true);
    expect(now.temperature).toBe(0);
    expect(now.scrap).toBeGreaterThan(0);
  });
});

describe("scenario files", () => {
  let dir = "";
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "plc2mqtt-scenario-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("loads a scenario from a path", async () => {
    const path = join(dir, "mixer.yaml");
    writeFileSync(
      path,
      [
        "unit: 4",
        "step: 1s",
        "state:",
        "  address: HR0",
        "  initial: on",
        "  states:",
        "    on: { value: 7, min: 1h, max: 2h }",
        "counters:",
        "  - { name: turns, address: IR5, type: uint16, per_minute: 60, in_states: [on] }",
      ].join("\n"),
    );
    const sim = await startModbusSimulator({ scenario: path });
    sims.push(sim);
    sim.advance(60_000);
    expect(sim.getRegisters(4, "HR0", 1)).toEqual([7]);
    expect(sim.getRegisters(4, "IR5", 1)[0]).toBeGreaterThan(30);
  });

  it("refuses a broken scenario with every problem named, and a missing one", async () => {
    const path = join(dir, "broken.yaml");
    writeFileSync(
      path,
      [
        "state:",
        "  address: C1",
        "  initial: idle",
        "  states:",
        "    on: { value: 1, min: 5s, max: 1s, next: { off: 1 } }",
      ].join("\n"),
    );
    const err = await startModbusSimulator({ scenario: path }).catch((e: unknown) => e);
    expect(isGatewayError(err, "CONFIG_INVALID")).toBe(true);
    expect((err as Error).message).toMatch(/state\.address: C1 cannot hold a state/);
    const states = "{ on: { value: 1, min: 5s, max: 1s, next: { off: 1 } } }";
    writeFileSync(path, `state: { address: HR1, initial: idle, states: ${states} }`);
    const cross = await startModbusSimulator({ scenario: path }).catch((e: unknown) => e);
    expect((cross as Error).message).toMatch(/state.initial: unknown state idle/);
    expect((cross as Error).message).toMatch(/min is above max/);
    expect((cross as Error).message).toMatch(/next: unknown state off/);
    const missing = await startModbusSimulator({ scenario: "no-such-line" }).catch(
      (e: unknown) => e,
    );
    expect(isGatewayError(missing, "CONFIG_READ")).toBe(true);
  });
});

describe("config/demo.yaml", () => {
  it("is a valid config whose tags decode the packaging line sensibly", async () => {
    const file = new URL("../../config/demo.yaml", import.meta.url);
    const config = configSchema.parse(parse(readFileSync(file, "utf8")));
    const [device] = config.devices;
    expect(device).toMatchObject({ protocol: "modbus-tcp", host: "127.0.0.1", port: 5020 });
    if (device?.protocol !== "modbus-tcp") throw new Error("demo.yaml reads a Modbus TCP device");
    const sim = await line(1);
    sim.advance(10 * 60_000);
    const values: Record<string, unknown> = {};
    for (const tag of device!.tags) {
      const t = resolveModbusTag(device!, tag);
      const at = `${{ coil: "C", discrete_input: "DI", input_register: "IR", holding_register: "HR" }[t.address.table]}${t.address.offset}`;
      values[t.name] =
        t.type === "bool" && t.address.bit === undefined
          ? sim.getBit(t.unitId, at)
          : decodeRegisters(sim.getRegisters(t.unitId, at, t.span), {
              type: t.type,
              byteOrder: t.byteOrder,
              ...(t.length === undefined ? {} : { length: t.length }),
            });
    }
    const expected = decoded(sim);
    expect(values).toEqual({
      machine_state: expected.state,
      good_count: expected.good,
      scrap_count: expected.scrap,
      temperature: expected.temperature,
      batch_id: expected.batch,
      batch_done: expected.done,
    });
    expect(values.batch_id).toMatch(/^B2026-\d{4}$/);
    expect(values.temperature as number).toBeGreaterThan(40);
    expect(values.good_count as number).toBeGreaterThan(100);
  });
});
