/**
 * Issue 13.2: one type vocabulary. An OPC UA tag takes the gateway's type names (`bool`,
 * `float32`, `float64`, `int8`...; the Modbus names where Modbus has the type), the OPC UA
 * names (`boolean`, `sbyte`, `byte`, `float`, `double`) stay as aliases of the same types;
 * `type` is optional (the variable's DataType is read at connect), and a configured type that
 * does not fit the server's is a clear error naming both, in the name the config used.
 */
import "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";
import { NSU, type OpcuaFixture, opcuaDevice, startOpcuaFixture } from "./opcua-fixture.ts";

function configText(tags: string[]): string {
  return [
    "version: 1",
    "gateway: { id: edge }",
    "devices:",
    "  - protocol: opcua",
    "    id: stand-1",
    "    endpoint: opc.tcp://10.0.0.7:4840",
    "    tags:",
    ...tags.map((t) => `      - ${t}`),
    "",
  ].join("\n");
}

function validate(tags: string[]): string[] {
  try {
    parseConfig(configText(tags), { file: "gateway.yaml", env: {}, baseDir: "/" });
    return [];
  } catch (err) {
    return ((err as { issues?: { path: string; message: string }[] }).issues ?? []).map(
      (i) => `${i.path}: ${i.message}`,
    );
  }
}

describe("point 2: OPC UA tags take the gateway's type names", () => {
  it("point 2: validate accepts bool, int8, float32, float64 and their arrays, and the OPC UA aliases", () => {
    expect(
      validate([
        '{ name: a, node: "ns=2;s=A", type: bool, states: { true: on, false: off } }',
        '{ name: b, node: "ns=2;s=B", type: float32, deadband: { absolute: 0.5 } }',
        '{ name: c, node: "ns=2;s=C", type: float64, range: { min: 0, max: 10 } }',
        '{ name: d, node: "ns=2;s=D", type: int8, alarms: { 7: sign } }',
        '{ name: e, node: "ns=2;s=E", type: uint8 }',
        '{ name: f, node: "ns=2;s=F", type: "float64[]" }',
        '{ name: g, node: "ns=2;s=G", type: "bool[]" }',
        '{ name: h, node: "ns=2;s=H", type: boolean, trigger: { on: rising, event: h.up } }',
        '{ name: i, node: "ns=2;s=I", type: double }',
        '{ name: j, node: "ns=2;s=J", type: "float[]" }',
        '{ name: k, node: "ns=2;s=K" }',
      ]),
    ).toEqual([]);
  });

  it("point 2: the rule checks judge a gateway name like its alias", () => {
    expect(
      validate([
        '{ name: a, node: "ns=2;s=A", type: bool, deadband: { absolute: 1 } }',
        '{ name: b, node: "ns=2;s=B", type: int8, alarms: { 8: x } }',
        '{ name: c, node: "ns=2;s=C", type: "bool[]", states: { 1: x } }',
        '{ name: d, node: "ns=2;s=D", type: bol }',
      ]),
    ).toEqual([
      "devices[0].tags[0].deadband: deadband needs a numeric tag, not bool",
      "devices[0].tags[1].alarms.8: bit 8 does not exist in an int8 (bits 0 to 7)",
      "devices[0].tags[2].states: states need a scalar integer or bool tag, not the array type bool[]: an array has no state",
      expect.stringMatching(/^devices\[0\]\.tags\[3\]\.type: .*bool.*float64/),
    ]);
  });
});

describe("point 2: against the simulator", () => {
  let fixture: OpcuaFixture;
  beforeAll(async () => {
    fixture = await startOpcuaFixture();
  });
  afterAll(async () => {
    await fixture?.close();
  });

  for (const mode of ["subscribe", "poll"] as const) {
    it(`point 2 (${mode}): gateway names, aliases and no type read the same values; a misfit names both types`, async () => {
      fixture.sim.setMany({
        Measurement1: 12.5,
        ResultReady: true,
        Result: 2,
        "Types.Float": 1.5,
        "Types.SByte": -100,
        Curve: [1, 2.5, 3],
      });
      const tags = [
        { name: "depth", node: `${NSU}Measurement1`, type: "float64" },
        { name: "depth_alias", node: `${NSU}Measurement1`, type: "double" },
        { name: "depth_untyped", node: `${NSU}Measurement1` },
        { name: "ready", node: `${NSU}ResultReady`, type: "bool", states: { true: "ready" } },
        { name: "ready_alias", node: `${NSU}ResultReady`, type: "boolean" },
        { name: "ready_untyped", node: `${NSU}ResultReady` },
        { name: "f32", node: `${NSU}Types.Float`, type: "float32" },
        { name: "f32_alias", node: `${NSU}Types.Float`, type: "float" },
        { name: "i8", node: `${NSU}Types.SByte`, type: "int8" },
        { name: "i8_alias", node: `${NSU}Types.SByte`, type: "sbyte" },
        { name: "curve", node: `${NSU}Curve`, type: "float64[]" },
        { name: "result_as_bool", node: `${NSU}Result`, type: "bool" },
        { name: "double_as_float32", node: `${NSU}Types.Double`, type: "float32" },
        { name: "double_as_float", node: `${NSU}Types.Double`, type: "float" },
        { name: "curve_as_bool_array", node: `${NSU}Curve`, type: "bool[]" },
      ];
      const device = opcuaDevice(fixture.sim.endpointUrl, { tags, mode });
      const driver = createDriver(device, { dataDir: fixture.dataDir });
      const ctx = { signal: new AbortController().signal, log: silentLogger() };
      const samples: TagSample[] = [];
      const latest = (tag: string) => samples.filter((s) => s.tag === tag).at(-1);
      try {
        await driver.connect(ctx);
        if (mode === "poll") samples.push(...(await driver.read!(ctx)));
        else await driver.subscribe!(ctx, (s) => samples.push(...s));
        await eventually(() => tags.every((t) => latest(t.name)), 10_000, "every tag");
        const good = (tag: string) => {
          const s = latest(tag)!;
          return s.quality === "good" ? s.value : [s.quality, s.reasonCode, s.reason];
        };
        for (const tag of ["depth", "depth_alias", "depth_untyped"]) expect(good(tag)).toBe(12.5);
        for (const tag of ["ready", "ready_alias", "ready_untyped"]) expect(good(tag)).toBe(true);
        expect(good("f32")).toBe(1.5);
        expect(good("f32_alias")).toBe(1.5);
        expect(good("i8")).toBe(-100);
        expect(good("i8_alias")).toBe(-100);
        expect(good("curve")).toEqual([1, 2.5, 3]);
        expect(good("result_as_bool")).toEqual([
          "bad",
          "OPCUA_TYPE_MISMATCH",
          "server DataType Int32 does not fit configured type bool",
        ]);
        expect(good("double_as_float32")).toEqual([
          "bad",
          "OPCUA_TYPE_MISMATCH",
          "server DataType Double does not fit configured type float32",
        ]);
        expect(good("double_as_float")).toEqual([
          "bad",
          "OPCUA_TYPE_MISMATCH",
          "server DataType Double does not fit configured type float",
        ]);
        expect(good("curve_as_bool_array")).toEqual([
          "bad",
          "OPCUA_TYPE_MISMATCH",
          "server DataType Double[] does not fit configured type bool[]",
        ]);
      } finally {
        await driver.close();
      }
    }, 30_000);
  }
});
