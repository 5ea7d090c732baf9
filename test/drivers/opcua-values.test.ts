/**
 * The pure parts of the OPC UA driver: value conversion by configured type, status to quality,
 * endpoint choice (auto picks the strongest modern policy; deprecated ones only when named),
 * nsu= resolution against a NamespaceArray, and the moments of one publish response.
 */
import { describe, expect, it } from "vitest";
import { moments } from "../../src/drivers/opcua/moments.ts";
import { resolveNodeId, withNamespaceUri } from "../../src/drivers/opcua/node-ids.ts";
import { chooseEndpoint } from "../../src/drivers/opcua/security.ts";
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
    expect(convertValue(Float64Array.from([1.5, 2]), 11, "double")).toEqual([1.5, 2]);
    expect(convertValue(Buffer.from([1, 2]), 15, "bytestring")).toBe("AQI=");
    expect(convertValue(new Date("2024-01-02T03:04:05.006Z"), 13, "datetime")).toBe(
      "2024-01-02T03:04:05.006Z",
    );
    expect(convertValue({ text: "Hallo", locale: "de" }, 21, "localizedtext")).toBe("Hallo");
    expect(convertValue({ name: "BadSensorFailure", value: 1 }, 19, "statuscode")).toBe(
      "BadSensorFailure",
    );
    expect(convertValue(7, 6, "double")).toBe(7);
    expect(convertValue(3.9, 11, "int32")).toBe(3);
    expect(convertValue(12, 6, "string")).toBe("12");
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
      sourceTime: 1000,
    });
    const misfit = convertDataValue(
      { value: { dataType: 12, value: "x" }, statusCode: good },
      "int32",
    );
    expect(misfit.quality).toBe("bad");
    expect(misfit.reason).toMatch(/int32 tag got a string/);
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
