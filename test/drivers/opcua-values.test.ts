/**
 * The pure parts of the OPC UA driver: value conversion by configured type, status to quality,
 * endpoint choice (auto picks the strongest modern policy; deprecated ones only when named),
 * nsu= resolution against a NamespaceArray, and the moments of one publish response.
 */
import { describe, expect, it } from "vitest";
import { moments } from "../../src/drivers/opcua/moments.ts";
import { resolveNodeId, withNamespaceUri } from "../../src/drivers/opcua/node-ids.ts";
import { chooseEndpoint } from "../../src/drivers/opcua/security.ts";
import { connectMisfit } from "../../src/drivers/opcua/type-fit.ts";
import { convertDataValue, convertValue, qualityOf } from "../../src/drivers/opcua/values.ts";

const good = { value: 0, name: "Good" };

describe("OPC UA values", () => {
  it("converts by the configured type", () => {
    expect(convertValue([0x001f_ffff, 0xffff_ffff], 8, "int64")).toBe(2 ** 53 - 1);
    expect(convertValue([0xffdf_ffff, 0xffff_ffff], 8, "int64")).toBe("-9007199254740993");
    expect(convertValue([0xffff_ffff, 0xffff_ffff], 9, "uint64")).toBe("18446744073709551615");
    expect(
      convertValue(
        [
          [0, 1],
          [0, 2],
        ],
        8,
        "json",
      ),
    ).toEqual([1, 2]);
    expect(convertValue(Float64Array.from([1.5, 2]), 11, "double[]")).toEqual([1.5, 2]);
    expect(convertValue(Float64Array.from([1.5, 2]), 11, "json")).toEqual([1.5, 2]);
    expect(convertValue(Buffer.from([1, 2]), 15, "bytestring")).toBe("AQI=");
    expect(convertValue(new Date("2024-01-02T03:04:05.006Z"), 13, "datetime")).toBe(
      "2024-01-02T03:04:05.006Z",
    );
    expect(convertValue({ text: "Hallo", locale: "de" }, 21, "localizedtext")).toBe("Hallo");
    expect(convertValue({ name: "BadSensorFailure", value: 1 }, 19, "statuscode")).toBe(
      "BadSensorFailure",
    );
    expect(convertValue(7, 6, "double")).toBe(7);
    expect(convertValue(58, 11, "int32")).toBe(58);
    expect(convertValue(-5, 6, "sbyte")).toBe(-5);
    expect(convertValue(1.5, 11, "float")).toBe(1.5);
    expect(convertValue([0x0020_0000, 0], 8, "double")).toBe(2 ** 53);
  });

  it("never converts a value that does not fit its configured type (issue 11.8)", () => {
    const misfit = (raw: unknown, dataType: number, type: string, arrayType?: number) => {
      const r = convertDataValue(
        {
          value: { dataType, value: raw, ...(arrayType === undefined ? {} : { arrayType }) },
          statusCode: good,
        },
        type as never,
      );
      expect(r.quality, `${String(raw)} as ${type}`).toBe("bad");
      expect(r.value).toBeNull();
      return [r.reasonCode, r.reason];
    };
    expect(misfit(58.7, 11, "int32")).toEqual([
      "OPCUA_VALUE_RANGE",
      "value 58.7 of type Double does not fit configured type int32: not a whole number",
    ]);
    expect(misfit(129, 6, "sbyte")).toEqual([
      "OPCUA_VALUE_RANGE",
      "value 129 of type Int32 does not fit configured type sbyte: out of range -128..127",
    ]);
    expect(misfit(-1, 6, "uint32")[0]).toBe("OPCUA_VALUE_RANGE");
    expect(misfit(0.1, 11, "float")[1]).toMatch(/not exact as a 32-bit float/);
    expect(misfit(2 ** 24 + 1, 6, "float")[0]).toBe("OPCUA_VALUE_RANGE");
    expect(misfit([0x0020_0000, 1], 8, "double")[1]).toMatch(
      /9007199254740993 .*not exact as a 64-bit/,
    );
    expect(misfit(Number.POSITIVE_INFINITY, 11, "int64")[1]).toMatch(/not a finite number/);
    expect(misfit(2, 6, "boolean")).toEqual([
      "OPCUA_TYPE_MISMATCH",
      "value of type Int32 does not fit configured type boolean",
    ]);
    expect(misfit(true, 1, "int32")[0]).toBe("OPCUA_TYPE_MISMATCH");
    expect(misfit("x", 12, "double")[0]).toBe("OPCUA_TYPE_MISMATCH");
    expect(misfit(12, 6, "string")[0]).toBe("OPCUA_TYPE_MISMATCH");
    expect(misfit(Float64Array.from([1, 2]), 11, "double", 1)).toEqual([
      "OPCUA_TYPE_MISMATCH",
      "value of type Double[] does not fit configured type double",
    ]);
    expect(misfit(1.5, 11, "double[]", 0)[0]).toBe("OPCUA_TYPE_MISMATCH");
    expect(misfit(Float64Array.from([1, 2]), 11, "double[]", 2)[0]).toBe("OPCUA_TYPE_MISMATCH");
    expect(misfit(Int32Array.from([1, 300]), 6, "byte[]", 1)[1]).toMatch(
      /^element 1: value 300 of type Int32 .* out of range 0\.\.255/,
    );
  });

  it("refuses an array on a tag with states, alarms or a trigger (issue 11.11)", () => {
    const r = convertDataValue(
      { value: { dataType: 11, arrayType: 1, value: Float64Array.from([3, 4]) }, statusCode: good },
      "json",
      { scalarOnly: true },
    );
    expect(r).toMatchObject({ quality: "bad", value: null, reasonCode: "OPCUA_ARRAY_VALUE" });
    expect(r.reason).toMatch(
      /array value of type Double\[\] on a tag with states, alarms or a trigger/,
    );
    const scalar = convertDataValue(
      { value: { dataType: 6, arrayType: 0, value: 3 }, statusCode: good },
      "json",
      { scalarOnly: true },
    );
    expect(scalar).toEqual({ value: 3, quality: "good" });
  });

  it("maps status codes to quality with the name as reason, and refuses misfits", () => {
    expect(qualityOf(good)).toEqual({ quality: "good" });
    expect(qualityOf({ value: 0x40a4_0000, name: "UncertainLastUsableValue" })).toEqual({
      quality: "uncertain",
      reason: "UncertainLastUsableValue",
    });
    const bad = convertDataValue(
      {
        value: { dataType: 11, value: 1 },
        statusCode: { value: 0x808b_0000, name: "BadSensorFailure" },
        sourceTimestamp: new Date(1000),
      },
      "double",
    );
    expect(bad).toEqual({
      value: null,
      quality: "bad",
      reason: "BadSensorFailure",
      reasonCode: "BadSensorFailure",
      sourceTime: 1000,
    });
    const misfit = convertDataValue(
      { value: { dataType: 12, value: "x" }, statusCode: good },
      "int32",
    );
    expect(misfit.quality).toBe("bad");
    expect(misfit.reason).toBe("value of type String does not fit configured type int32");
    expect(misfit.reasonCode).toBe("OPCUA_TYPE_MISMATCH");
  });
});

describe("OPC UA endpoints and node ids", () => {
  const offered = [
    { mode: "None" as const, policy: "None" },
    { mode: "SignAndEncrypt" as const, policy: "Basic256Sha256" },
    { mode: "SignAndEncrypt" as const, policy: "Aes128_Sha256_RsaOaep" },
    { mode: "SignAndEncrypt" as const, policy: "Basic256" },
  ];
  it("picks the strongest modern policy for auto, deprecated ones only when named", () => {
    const url = "opc.tcp://x:4840";
    expect(chooseEndpoint(offered, { mode: "SignAndEncrypt", policy: "auto" }, url).policy).toBe(
      "Aes128_Sha256_RsaOaep",
    );
    expect(
      chooseEndpoint(offered, { mode: "SignAndEncrypt", policy: "Basic256" }, url).policy,
    ).toBe("Basic256");
    expect(() =>
      chooseEndpoint(offered.slice(0, 1), { mode: "SignAndEncrypt", policy: "auto" }, url),
    ).toThrow(/offers no endpoint with SignAndEncrypt .*; it offers: None/);
  });

  it("resolves nsu= through the NamespaceArray and writes it back", () => {
    const ns = ["http://opcfoundation.org/UA/", "urn:server", "urn:pad", "urn:plant"];
    expect(resolveNodeId("nsu=urn:plant;s=A.B", ns)).toEqual({ id: "ns=3;s=A.B" });
    expect(resolveNodeId("nsu=urn:gone;i=5", ns)).toEqual({
      reason: "namespace urn:gone is not in the server's NamespaceArray",
      reasonCode: "OPCUA_UNRESOLVED",
    });
    expect(resolveNodeId("ns=2;i=5", ns)).toEqual({ id: "ns=2;i=5" });
    expect(withNamespaceUri("ns=3;s=A.B", ns)).toBe("nsu=urn:plant;s=A.B");
  });
});

describe("OPC UA moments of one publish response", () => {
  const at = (tag: string, value: number, sourceTime?: number) => ({
    device: "d",
    tag,
    value,
    quality: "good" as const,
    readTime: 1000,
    ...(sourceTime === undefined ? {} : { sourceTime }),
  });
  const shape = (samples: ReturnType<typeof at>[]) =>
    moments(samples).map((m) => m.map((s) => `${s.tag}=${s.value}`));

  it("splits by source time, ascending; equal times stay together in arrival order", () => {
    expect(shape([])).toEqual([]);
    expect(shape([at("a", 1, 30), at("b", 1, 10), at("a", 2, 40), at("c", 1, 10)])).toEqual([
      ["b=1", "c=1"],
      ["a=1"],
      ["a=2"],
    ]);
  });

  it("puts a sample without source time at its read time, after earlier source times", () => {
    expect(shape([at("a", 1), at("b", 1, 900), at("c", 1, 1000)])).toEqual([
      ["b=1"],
      ["a=1", "c=1"],
    ]);
  });

  it("never moves a tag's sample before its predecessor (a server clock stepping back)", () => {
    expect(shape([at("a", 1, 50), at("b", 1, 20), at("a", 2, 10), at("b", 2, 60)])).toEqual([
      ["b=1"],
      ["a=1", "a=2"],
      ["b=2"],
    ]);
  });
});

describe("OPC UA connect check of a configured type against the variable", () => {
  const check = (name: string, base: number, valueRank: number, type: string, scalarOnly = false) =>
    connectMisfit({ name, base, valueRank }, type as never, scalarOnly)?.reason ?? "fits";

  it("takes the same or a wider type of the same kind, refuses the rest naming both types", () => {
    expect(check("Int16", 4, -1, "int32")).toBe("fits");
    expect(check("UInt32", 7, -1, "int64")).toBe("fits");
    expect(check("UInt16", 5, -1, "float")).toBe("fits");
    expect(check("Int32", 6, -1, "double")).toBe("fits");
    expect(check("Float", 10, -1, "double")).toBe("fits");
    expect(check("Anything", 22, -1, "json")).toBe("fits");
    expect(check("MachineState (Enumeration)", 29, -1, "int32")).toBe("fits");
    expect(check("Int32", 6, -1, "float")).toBe(
      "server DataType Int32 does not fit configured type float",
    );
    expect(check("Int64", 8, -1, "double")).toMatch(/Int64 does not fit configured type double/);
    expect(check("UInt16", 5, -1, "int16")).toMatch(/does not fit/);
    expect(check("Int32", 6, -1, "uint32")).toMatch(/does not fit/);
    expect(check("Boolean", 1, -1, "byte")).toMatch(/does not fit/);
    expect(check("Recipe (Structure)", 22, -1, "string")).toMatch(/does not fit/);
  });

  it("leaves abstract DataTypes to the run-time check unless no value could fit", () => {
    expect(check("BaseDataType", 24, -2, "boolean")).toBe("fits");
    expect(check("Number", 26, -1, "int32")).toBe("fits");
    expect(check("Integer", 27, -1, "double")).toBe("fits");
    expect(check("Number", 26, -1, "boolean")).toBe(
      "server DataType Number does not fit configured type boolean",
    );
    expect(check("UInteger", 28, -1, "string")).toMatch(/does not fit/);
  });

  it("matches scalars and arrays by ValueRank; arrays never on states, alarms or triggers", () => {
    expect(check("Double", 11, 1, "double[]")).toBe("fits");
    expect(check("Double", 11, 0, "double[]")).toBe("fits");
    expect(check("Double", 11, -3, "double")).toBe("fits");
    expect(check("Double", 11, -2, "double[]")).toBe("fits");
    expect(check("Double", 11, 2, "double[]")).toBe(
      "server DataType Double[,] does not fit configured type double[]",
    );
    expect(check("Double", 11, 1, "json", true)).toBe(
      "server DataType Double[] is an array: states, alarms and triggers need a scalar value",
    );
    expect(check("Double", 11, -1, "double[]", true)).toMatch(
      /configured type double\[\] is an array/,
    );
    expect(check("Double", 11, -2, "json", true)).toBe("fits");
  });
});
