/**
 * Issue 11.8 and 11.11 against the bundled simulator: a configured type that does not fit the
 * variable (its DataType and ValueRank, read at connect) makes only that tag bad, with a reason
 * naming both types and a reasonCode, logged once; the device's other tags work. A value that
 * does not fit exactly at run time (Types.Variant: DataType BaseDataType, any type per write) is
 * bad, never cut, rounded or wrapped. An array on a tag with states, alarms or a trigger is bad
 * at connect (ValueRank 1) or per value (ValueRank Any).
 */
import "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";
import { NSU, type OpcuaFixture, opcuaDevice, startOpcuaFixture } from "./opcua-fixture.ts";

let fixture: OpcuaFixture;

beforeAll(async () => {
  fixture = await startOpcuaFixture();
});
afterAll(async () => {
  await fixture?.close();
});

/** A driver for `tags`, its samples by tag (latest last) and its warn lines. */
function harness(tags: Record<string, unknown>[], mode: "subscribe" | "poll" = "subscribe") {
  const device = opcuaDevice(fixture.sim.endpointUrl, { tags, mode });
  const driver = createDriver(device, { dataDir: fixture.dataDir });
  const lines: { msg: string; tag?: string; [key: string]: unknown }[] = [];
  const log = createLogger({
    level: "warn",
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  });
  const ctx = { signal: new AbortController().signal, log };
  const samples: TagSample[] = [];
  const latest = (tag: string) => samples.filter((s) => s.tag === tag).at(-1);
  /** connect, then subscribe or read once */
  const start = async () => {
    await driver.connect(ctx);
    if (mode === "poll") samples.push(...(await driver.read!(ctx)));
    else await driver.subscribe!(ctx, (s) => samples.push(...s));
    await eventually(() => tags.every((t) => latest(String(t.name))), 10_000, "every tag");
  };
  return { driver, ctx, samples, latest, lines, start };
}

const MISFIT_LOG = "OPC UA tag type does not fit its variable; the tag is bad";

describe("OPC UA: a configured type that does not fit the variable (issue 11.8)", () => {
  const tags = [
    { name: "depth", node: `${NSU}Measurement1`, type: "double" },
    { name: "serial", node: `${NSU}SerialNumber`, type: "string" },
    { name: "wide_int", node: `${NSU}Types.Int16`, type: "int32" },
    { name: "wide_float", node: `${NSU}Types.Float`, type: "double" },
    { name: "curve", node: `${NSU}Curve`, type: "double[]" },
    { name: "untyped_curve", node: `${NSU}Curve` },
    { name: "enum", node: `${NSU}Types.Enumeration`, type: "int32", states: { 3: "shutdown" } },
    { name: "untyped_enum", node: `${NSU}Types.Enumeration` },
    { name: "duration", node: `${NSU}Types.Duration`, type: "double" },
    { name: "enum_as_boolean", node: `${NSU}Types.Enumeration`, type: "boolean" },
    { name: "duration_as_int32", node: `${NSU}Types.Duration`, type: "int32" },
    { name: "double_as_int32", node: `${NSU}Types.Double`, type: "int32" },
    { name: "int32_as_sbyte", node: `${NSU}Result`, type: "sbyte" },
    {
      name: "int32_as_boolean",
      node: `${NSU}Result`,
      type: "boolean",
      states: { true: "passed", false: "none" },
    },
    { name: "string_as_double", node: `${NSU}SerialNumber`, type: "double" },
    { name: "array_as_scalar", node: `${NSU}Curve`, type: "double" },
    { name: "scalar_as_array", node: `${NSU}Measurement2`, type: "double[]" },
  ];
  const MISFITS: Record<string, string> = {
    double_as_int32: "server DataType Double does not fit configured type int32",
    int32_as_sbyte: "server DataType Int32 does not fit configured type sbyte",
    int32_as_boolean: "server DataType Int32 does not fit configured type boolean",
    string_as_double: "server DataType String does not fit configured type double",
    array_as_scalar: "server DataType Double[] does not fit configured type double",
    scalar_as_array: "server DataType Double does not fit configured type double[]",
    enum_as_boolean:
      "server DataType ServerState (Enumeration) does not fit configured type boolean",
    duration_as_int32: "server DataType Duration (Double) does not fit configured type int32",
  };

  for (const mode of ["subscribe", "poll"] as const) {
    it(`${mode}: only the misfit tags are bad, with both types, logged once`, async () => {
      fixture.sim.setMany({
        Measurement1: 12.5,
        SerialNumber: "SN-7",
        Result: 2,
        "Types.Double": 58.7,
        Curve: [1, 2, 3],
        "Types.Enumeration": 3,
        "Types.Duration": 250.5,
      });
      const h = harness(tags, mode);
      try {
        await h.start();
        expect(h.latest("depth")).toMatchObject({ quality: "good", value: 12.5 });
        expect(h.latest("serial")).toMatchObject({ quality: "good", value: "SN-7" });
        expect(h.latest("wide_int")).toMatchObject({ quality: "good", value: -30_000 });
        expect(h.latest("wide_float")).toMatchObject({ quality: "good", value: 1.5 });
        expect(h.latest("curve")).toMatchObject({ quality: "good", value: [1, 2, 3] });
        expect(h.latest("untyped_curve")).toMatchObject({ quality: "good", value: [1, 2, 3] });
        expect(h.latest("enum")).toMatchObject({ quality: "good", value: 3 });
        expect(h.latest("untyped_enum")).toMatchObject({ quality: "good", value: 3 });
        expect(h.latest("duration")).toMatchObject({ quality: "good", value: 250.5 });
        for (const [tag, reason] of Object.entries(MISFITS)) {
          expect(h.latest(tag), tag).toMatchObject({
            quality: "bad",
            value: null,
            reason,
            reasonCode: "OPCUA_TYPE_MISMATCH",
          });
        }
        // a misfit tag never delivers a value, whatever the server does
        fixture.sim.set("Types.Double", 42);
        fixture.sim.set("Measurement1", 13.5);
        if (mode === "poll") h.samples.push(...(await h.driver.read!(h.ctx)));
        await eventually(() => h.latest("depth")?.value === 13.5, 10_000, "depth 13.5");
        expect(h.samples.filter((s) => s.tag in MISFITS && s.quality !== "bad")).toEqual([]);

        // reconnecting does not repeat the log line
        await h.driver.connect(h.ctx);
        const misfitLines = h.lines.filter((l) => l.msg === MISFIT_LOG);
        expect(misfitLines.map((l) => l.tag).sort()).toEqual(Object.keys(MISFITS).sort());
        expect(misfitLines.find((l) => l.tag === "double_as_int32")).toMatchObject({
          server_type: "Double",
          configured_type: "int32",
          code: "OPCUA_TYPE_MISMATCH",
        });
      } finally {
        await h.driver.close();
      }
    }, 30_000);
  }
});

describe("OPC UA: a value that does not fit its type exactly is never good (issue 11.8)", () => {
  it("checks each value of a BaseDataType variable against the configured type", async () => {
    const node = `${NSU}Types.Variant`;
    const tags = ["int32", "sbyte", "boolean", "double", "float", "string", "int64"].map(
      (type) => ({ name: `v_${type}`, node, type }),
    );
    fixture.sim.set("Types.Variant", { dataType: "Int32", value: 7 });
    const h = harness(tags);
    try {
      await h.start();
      const write = async (value: unknown) => {
        const mark = h.samples.length;
        fixture.sim.set("Types.Variant", value);
        await eventually(
          () => tags.every((t) => h.samples.slice(mark).some((s) => s.tag === t.name)),
          10_000,
          "the write",
        );
        return (tag: string) => {
          const s = h.latest(`v_${tag}`)!;
          return s.quality === "good" ? s.value : [s.reasonCode, s.reason];
        };
      };
      let got = await write({ dataType: "Double", value: 58.7 });
      expect(got("int32")).toEqual([
        "OPCUA_VALUE_RANGE",
        "value 58.7 of type Double does not fit configured type int32: not a whole number",
      ]);
      expect(got("double")).toBe(58.7);
      expect(got("float")).toEqual([
        "OPCUA_VALUE_RANGE",
        "value 58.7 of type Double does not fit configured type float: not exact as a 32-bit float",
      ]);
      expect(got("string")).toEqual([
        "OPCUA_TYPE_MISMATCH",
        "value of type Double does not fit configured type string",
      ]);

      got = await write({ dataType: "Int32", value: 129 });
      expect(got("sbyte")).toEqual([
        "OPCUA_VALUE_RANGE",
        "value 129 of type Int32 does not fit configured type sbyte: out of range -128..127",
      ]);
      expect(got("int32")).toBe(129);
      expect(got("double")).toBe(129);
      expect(got("float")).toBe(129);

      got = await write({ dataType: "Int32", value: 2 });
      expect(got("boolean")).toEqual([
        "OPCUA_TYPE_MISMATCH",
        "value of type Int32 does not fit configured type boolean",
      ]);
      expect(got("sbyte")).toBe(2);

      got = await write({ dataType: "Double", value: 58 });
      expect(got("int32")).toBe(58);
      expect(got("sbyte")).toBe(58);

      got = await write({ dataType: "Int64", value: 2n ** 53n + 1n });
      expect(got("int64")).toBe("9007199254740993");
      expect(got("double")).toEqual([
        "OPCUA_VALUE_RANGE",
        "value 9007199254740993 of type Int64 does not fit configured type double: not exact as a 64-bit float",
      ]);
      expect(got("int32")).toEqual([
        "OPCUA_VALUE_RANGE",
        "value 9007199254740993 of type Int64 does not fit configured type int32: out of range -2147483648..2147483647",
      ]);

      got = await write({ dataType: "String", value: "58" });
      expect(got("string")).toBe("58");
      expect(got("int32")).toEqual([
        "OPCUA_TYPE_MISMATCH",
        "value of type String does not fit configured type int32",
      ]);
    } finally {
      await h.driver.close();
    }
  }, 30_000);
});

describe("OPC UA: an array value on a tag with states, alarms or a trigger (issue 11.11)", () => {
  const ARRAY_AT_CONNECT =
    "server DataType Double[] is an array: states, alarms and triggers need a scalar value";

  it("is bad at connect when the variable is an array (ValueRank 1), logged once", async () => {
    fixture.sim.set("Curve", [3, 3, 3, 3, 4]);
    const tags = [
      { name: "depth", node: `${NSU}Measurement1`, type: "double" },
      { name: "curve", node: `${NSU}Curve`, type: "double[]" },
      { name: "with_states", node: `${NSU}Curve`, type: "int32", states: { 3: "a", 4: "b" } },
      { name: "with_alarms", node: `${NSU}Curve`, type: "uint16", alarms: { 0: "overheat" } },
      {
        name: "with_trigger",
        node: `${NSU}Curve`,
        type: "boolean",
        trigger: { on: "rising", event: "curve.up" },
      },
      { name: "untyped_trigger", node: `${NSU}Curve`, trigger: { on: "change", event: "c.x" } },
    ];
    const h = harness(tags);
    try {
      await h.start();
      expect(h.latest("depth")?.quality).toBe("good");
      expect(h.latest("curve")).toMatchObject({ quality: "good", value: [3, 3, 3, 3, 4] });
      for (const tag of ["with_states", "with_alarms", "with_trigger", "untyped_trigger"]) {
        expect(h.latest(tag), tag).toMatchObject({
          quality: "bad",
          value: null,
          reason: ARRAY_AT_CONNECT,
          reasonCode: "OPCUA_ARRAY_VALUE",
        });
      }
      const logged = h.lines.filter((l) => l.msg === MISFIT_LOG);
      expect(logged.map((l) => [l.tag, l.code])).toEqual([
        ["with_states", "OPCUA_ARRAY_VALUE"],
        ["with_alarms", "OPCUA_ARRAY_VALUE"],
        ["with_trigger", "OPCUA_ARRAY_VALUE"],
        ["untyped_trigger", "OPCUA_ARRAY_VALUE"],
      ]);
    } finally {
      await h.driver.close();
    }
  }, 30_000);

  it("is bad per value when the variable may hold either (ValueRank Any)", async () => {
    const node = `${NSU}Types.Variant`;
    const tags = [
      { name: "state", node, type: "int32", states: { 1: "on", 2: "off" } },
      { name: "changed", node, type: "json", trigger: { on: "change", event: "v.changed" } },
      { name: "plain", node, type: "json" },
    ];
    fixture.sim.set("Types.Variant", { dataType: "Int32", value: 1 });
    const h = harness(tags);
    try {
      await h.start();
      expect(h.latest("state")).toMatchObject({ quality: "good", value: 1 });
      const mark = h.samples.length;
      fixture.sim.set("Types.Variant", { dataType: "Double", value: [3, 3, 3, 3, 4] });
      await eventually(() => h.samples.length >= mark + 3, 10_000, "the array");
      for (const tag of ["state", "changed"]) {
        expect(h.latest(tag), tag).toMatchObject({
          quality: "bad",
          value: null,
          reasonCode: "OPCUA_ARRAY_VALUE",
        });
        expect(h.latest(tag)?.reason).toMatch(
          /^array value of type Double\[\] on a tag with states, alarms or a trigger/,
        );
      }
      expect(h.latest("plain")).toMatchObject({ quality: "good", value: [3, 3, 3, 3, 4] });
      fixture.sim.set("Types.Variant", { dataType: "Int32", value: 2 });
      await eventually(() => h.latest("state")?.value === 2, 10_000, "a scalar again");
      expect(h.latest("changed")).toMatchObject({ quality: "good", value: 2 });
      expect(h.lines.filter((l) => l.msg === MISFIT_LOG)).toEqual([]);
    } finally {
      await h.driver.close();
    }
  }, 30_000);
});
