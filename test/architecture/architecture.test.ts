import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { collect, cycles, parseSource, violations } from "./rules.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

describe("the dependency direction of STYLE.md", () => {
  const files = collect(root, ["src", "simulators"]);

  it("sees the source tree", () => {
    expect(files.length).toBeGreaterThan(10);
    expect(files.some((f) => f.path === "src/main.ts")).toBe(true);
  });

  it("has no wrong-way import, foreign protocol import or stray process use", () => {
    expect(violations(files)).toEqual([]);
  });

  it("has no import cycle", () => {
    expect(cycles(files)).toEqual([]);
  });
});

describe("the checks themselves", () => {
  it("catch a wrong-way import, a driver importing a driver and a protocol library out of place", () => {
    const bad = [
      parseSource("src/lib/a.ts", 'import { x } from "../config/units.ts";'),
      parseSource("src/drivers/modbus/x.ts", 'import { y } from "../opcua/y.ts";'),
      parseSource("src/engine/e.ts", 'import mqtt from "mqtt";\nexport const p = process.env;'),
      parseSource("src/events/e.ts", 'export { z } from "../lib/z.ts";'),
    ];
    const found = violations(bad);
    expect(found).toHaveLength(5);
    expect(found.join("\n")).toMatch(/lib\/a.ts \(lib\) must not import src\/config\/units.ts/);
    expect(found.join("\n")).toMatch(/a driver must not import another driver/);
    expect(found.join("\n")).toMatch(/imports mqtt/);
    expect(found.join("\n")).toMatch(/touches process/);
    expect(found.join("\n")).toMatch(/events\/e.ts \(events\) must not import/);
  });

  it("catch a cycle", () => {
    const loop = [
      parseSource("src/lib/a.ts", 'import { b } from "./b.ts";'),
      parseSource("src/lib/b.ts", 'import { a } from "./a.ts";'),
    ];
    expect(cycles(loop)).toEqual([["src/lib/a.ts", "src/lib/b.ts", "src/lib/a.ts"]]);
  });
});
