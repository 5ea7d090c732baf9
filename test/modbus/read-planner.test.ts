import { describe, expect, it } from "vitest";
import {
  type ModbusDeviceShape,
  type ResolvedModbusTag,
  resolveModbusTag,
} from "../../src/config/modbus-tags.ts";
import type { ModbusTagConfig } from "../../src/config/schema/modbus.ts";
import {
  type PlanFacts,
  type PlanLimits,
  planAround,
  planReads,
} from "../../src/drivers/modbus/read-planner.ts";

const device: ModbusDeviceShape = {
  unit_id: 1,
  address_base: 0,
  byte_order: "ABCD",
  poll_interval: 1000,
};
const limits: PlanLimits = { maxRegisters: 125, maxBits: 2000, maxGap: 4 };

let counter = 0;
function tag(address: string, more: Partial<ModbusTagConfig> = {}): ResolvedModbusTag {
  counter += 1;
  return resolveModbusTag(device, { name: `t${counter}`, address, ...more });
}

/** What a plan reads, compactly: "unit/table start+count". */
function shape(tags: ResolvedModbusTag[], l: PlanLimits = limits): string[] {
  return planReads(tags, l).map((r) => `${r.unitId}/${r.table} ${r.start}+${r.count}`);
}

/** Every tag is in exactly one request, wholly inside it, same unit and table. */
function expectCovers(tags: ResolvedModbusTag[], l: PlanLimits = limits): void {
  const plan = planReads(tags, l);
  const seen = plan.flatMap((r) => r.tags);
  expect(seen).toHaveLength(tags.length);
  expect(new Set(seen)).toEqual(new Set(tags));
  for (const r of plan) {
    for (const t of r.tags) {
      expect(t.unitId).toBe(r.unitId);
      expect(t.address.table).toBe(r.table);
      expect(t.address.offset).toBeGreaterThanOrEqual(r.start);
      expect(t.address.offset + t.span).toBeLessThanOrEqual(r.start + r.count);
    }
  }
}

describe("planReads", () => {
  it.each([
    [1, 1],
    [125, 1],
    [126, 2],
    [10_000, 80],
  ])("%i contiguous uint16 registers take %i request(s)", (n, requests) => {
    const tags = Array.from({ length: n }, (_, i) => tag(`HR${i}`));
    const plan = planReads(tags, limits);
    expect(plan).toHaveLength(requests);
    expect(plan.every((r) => r.count <= 125)).toBe(true);
    expect(plan.reduce((sum, r) => sum + r.count, 0)).toBe(n);
    expectCovers(tags);
  });

  it("never splits a float32 across the 125-register boundary", () => {
    // float32s at 0, 2, ..., 124: the one at 124 would need registers 124 and 125
    const tags = Array.from({ length: 64 }, (_, i) => tag(`HR${i * 2}`, { type: "float32" }));
    expect(shape(tags)).toEqual(["1/holding_register 0+124", "1/holding_register 124+4"]);
    expectCovers(tags);
  });

  it("merges gaps up to maxGap and splits beyond", () => {
    expect(shape([tag("HR0"), tag("HR5")])).toEqual(["1/holding_register 0+6"]); // gap 4
    expect(shape([tag("HR0"), tag("HR6")])).toEqual([
      "1/holding_register 0+1",
      "1/holding_register 6+1",
    ]); // gap 5
    const noGap = { ...limits, maxGap: 0 };
    expect(shape([tag("HR0"), tag("HR1"), tag("HR3")], noGap)).toEqual([
      "1/holding_register 0+2",
      "1/holding_register 3+1",
    ]);
    // the gap is measured from the end of a wide tag
    expect(shape([tag("HR0", { type: "float64" }), tag("HR8")])).toEqual([
      "1/holding_register 0+9",
    ]);
  });

  it("reads up to 2000 coils per request, gaps counted x16 in bits", () => {
    const coils = Array.from({ length: 4001 }, (_, i) => tag(`C${i}`));
    expect(shape(coils)).toEqual(["1/coil 0+2000", "1/coil 2000+2000", "1/coil 4000+1"]);
    expect(shape([tag("DI0"), tag("DI65")])).toEqual(["1/discrete_input 0+66"]); // gap 64
    expect(shape([tag("DI0"), tag("DI66")])).toEqual([
      "1/discrete_input 0+1",
      "1/discrete_input 66+1",
    ]);
    expectCovers(coils);
  });

  it("never mixes unit ids or tables, output sorted by unit, table, start", () => {
    const tags = [
      tag("IR1"),
      tag("HR2", { unit_id: 2 }),
      tag("HR1"),
      tag("C1"),
      tag("HR0"),
      tag("IR0"),
      tag("DI0"),
      tag("HR0", { unit_id: 2 }),
    ];
    expect(shape(tags)).toEqual([
      "1/coil 1+1",
      "1/discrete_input 0+1",
      "1/holding_register 0+2",
      "1/input_register 0+2",
      "2/holding_register 0+3",
    ]);
    expectCovers(tags);
    // same answer whatever the input order
    expect(shape([...tags].reverse())).toEqual(shape(tags));
  });

  it("handles overlapping tags and bits sharing a register", () => {
    const wide = tag("HR100", { type: "uint32" });
    const inner = tag("HR101");
    const bits = [tag("HR100.0"), tag("HR100.15"), tag("HR101.3")];
    const tags = [inner, ...bits, wide];
    const plan = planReads(tags, limits);
    expect(plan).toHaveLength(1);
    expect(plan[0]).toMatchObject({ unitId: 1, table: "holding_register", start: 100, count: 2 });
    expect(plan[0]!.tags.map((t) => t.name)).toEqual([
      wide.name,
      bits[0]!.name,
      bits[1]!.name,
      inner.name,
      bits[2]!.name,
    ]);
    expectCovers(tags);
  });

  it("honours a smaller register limit", () => {
    const small = { ...limits, maxRegisters: 10 };
    const tags = Array.from({ length: 25 }, (_, i) => tag(`IR${i}`));
    expect(shape(tags, small)).toEqual([
      "1/input_register 0+10",
      "1/input_register 10+10",
      "1/input_register 20+5",
    ]);
  });

  it("throws naming a tag wider than one request", () => {
    const long = resolveModbusTag(device, {
      name: "recipe_name",
      address: "HR0",
      type: "string",
      length: 20,
    });
    expect(() => planReads([long], { ...limits, maxRegisters: 16 })).toThrow(
      /recipe_name spans 20 registers, more than the 16/,
    );
    expect(() =>
      planReads([tag("HR0", { type: "float64" })], { ...limits, maxRegisters: 3 }),
    ).toThrow(/spans 4 registers/);
  });

  it("rejects nonsense limits and plans nothing for no tags", () => {
    expect(planReads([], limits)).toEqual([]);
    expect(() => planReads([], { ...limits, maxRegisters: 0 })).toThrow(/maxRegisters/);
    expect(() => planReads([], { ...limits, maxGap: -1 })).toThrow(/maxGap/);
  });
});

describe("planning around what the device taught (issue 13 point 9)", () => {
  const facts = (holes: number[], size?: number): PlanFacts => ({
    holes: (_unit, table) => (table === "holding_register" ? new Set(holes) : undefined),
    maxRequest: () => size,
  });
  const compact = (plan: { start: number; count: number }[]) =>
    plan.map((r) => `${r.start}+${r.count}`);

  it("point 9: a request never spans a missing register; what is contiguous stays merged", () => {
    const tags = ["HR100", "HR102", "HR103", "HR106"].map((a) => tag(a));
    expect(compact(planReads(tags, limits))).toEqual(["100+7"]);
    expect(compact(planReads(tags, limits, facts([101, 105])))).toEqual([
      "100+1",
      "102+2",
      "106+1",
    ]);
  });

  it("point 9: a learned size caps every request; a tag wider than it is read alone", () => {
    const words = Array.from({ length: 10 }, (_, i) => tag(`HR${i}`));
    expect(compact(planReads(words, limits, facts([], 4)))).toEqual(["0+4", "4+4", "8+2"]);
    const wide = [tag("HR20", { type: "float64" }), tag("HR24")];
    expect(compact(planReads(wide, limits, facts([], 2)))).toEqual(["20+4", "24+1"]);
  });

  it("point 9: a tag on a missing register gets a request of its own, shared only on its registers", () => {
    const ghost = tag("HR101");
    const ghostBit = tag("HR101.3");
    const tags = [tag("HR100"), ghost, ghostBit, tag("HR102")];
    const { plan, alone } = planAround(tags, limits, facts([101]), (t) =>
      [ghost, ghostBit].includes(t),
    );
    expect(compact(plan)).toEqual(["100+1", "101+1", "102+1"]);
    expect(alone).toHaveLength(1);
    expect(alone[0]!.tags).toEqual([ghost, ghostBit]);
  });
});
