import { describe, expect, it } from "vitest";
import { encodeRegisters } from "../../src/drivers/modbus/codec.ts";
import { formatInterpretations, interpretRegisters } from "../../src/drivers/modbus/decode-all.ts";

// float32 123.456 (0x42F6E979) word-swapped (CDAB) at offset 2, "OK" after it
const words = [0, 0, 0xe979, 0x42f6, 0x4f4b, 0, 1, 0xffff];

describe("interpretRegisters", () => {
  const rows = interpretRegisters(words);

  it("finds the float32 in CDAB at offset 2", () => {
    expect(rows).toContainEqual({ offset: 2, type: "float32", byteOrder: "CDAB", value: 123.456 });
  });

  it("offers every type that fits at every offset", () => {
    const at = (offset: number) => rows.filter((r) => r.offset === offset);
    // 16-bit x2 x2, 32-bit x3 x4, 64-bit x3 x4, string x2
    expect(at(0)).toHaveLength(4 + 12 + 12 + 2);
    expect(at(4)).toHaveLength(30); // four registers remain
    expect(at(5)).toHaveLength(4 + 12 + 2); // three remain: no 64-bit
    expect(at(7)).toHaveLength(4 + 2); // one remains
    expect(rows.filter((r) => r.type === "string" && r.offset === 4).map((r) => r.value)).toEqual([
      "OK",
      "KO",
    ]);
    expect(rows).toContainEqual({ offset: 7, type: "int16", byteOrder: "ABCD", value: -1 });
    expect(rows).toContainEqual({
      offset: 4,
      type: "uint64",
      byteOrder: "ABCD",
      value: 0x4f4b_0000_0001_ffffn.toString(),
    });
  });

  it("handles an empty read", () => {
    expect(interpretRegisters([])).toEqual([]);
  });
});

describe("formatInterpretations", () => {
  const text = formatInterpretations(words, "HR100", interpretRegisters(words));
  const lines = text.split("\n");

  it("shows 123.456 on the HR102 float32 CDAB row", () => {
    const row = lines.find((l) => /^HR102\s+float32\s+CDAB\s/.test(l));
    expect(row).toBeDefined();
    expect(row!.trim().split(/\s+/).at(-1)).toBe("123.456");
  });

  it("puts the raw words in hex and decimal on top", () => {
    const table = lines.findIndex((l) => l.startsWith("address"));
    const raw = lines.slice(0, table).join("\n");
    expect(raw).toMatch(/^HR102\s+0xE979\s+59769\s+1110 1001 0111 1001$/m);
    expect(raw).toMatch(/^HR107\s+0xFFFF\s+65535\s/m);
    expect(lines[0]).toBe("HR100 .. HR107: 8 register(s)");
  });

  it("fits an 80-column terminal and labels orders by width", () => {
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(lines.some((l) => /^HR107\s+int16\s+BA\s+-1$/.test(l))).toBe(true);
    expect(lines.some((l) => /^HR103\s+float64\s+GHEFCDAB\s/.test(l))).toBe(true);
    expect(lines.some((l) => /^HR104\s+string\s+high 1st\s+"OK"$/.test(l))).toBe(true);
  });

  it("cuts long strings and shows 64-bit strings bare", () => {
    const long = encodeRegisters("A".repeat(60), {
      type: "string",
      byteOrder: "ABCD",
      length: 30,
    });
    const out = formatInterpretations(long, "IR0", interpretRegisters(long)).split("\n");
    expect(Math.max(...out.map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(out.find((l) => l.startsWith("IR0 ") && l.includes("high 1st"))).toMatch(
      /"AAAA+\.\.\.$/,
    );
    const big = [0xffff, 0xffff, 0xffff, 0xffff];
    const rows = formatInterpretations(big, "HR0", interpretRegisters(big)).split("\n");
    expect(rows).toContain("HR0        uint64   ABCDEFGH   18446744073709551615");
  });

  it("counts Modicon and other first addresses on", () => {
    const two = [1, 2];
    expect(formatInterpretations(two, "40101", interpretRegisters(two))).toMatch(/^40102\s+int16/m);
    expect(formatInterpretations(two, "ir9", interpretRegisters(two))).toMatch(/^IR10\s+uint16/m);
  });
});
