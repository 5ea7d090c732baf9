import { describe, expect, it } from "vitest";
import { BYTE_ORDERS, type ByteOrder, type ModbusType } from "../../src/config/modbus-types.ts";
import {
  type CodecSpec,
  decodeRegisters,
  encodeRegisters,
  registersFor,
} from "../../src/drivers/modbus/codec.ts";
import type { TagValue } from "../../src/events/sample.ts";

const spec = (type: ModbusType, byteOrder: ByteOrder = "ABCD", more: Partial<CodecSpec> = {}) => ({
  type,
  byteOrder,
  ...more,
});

/** A small seeded generator so failures reproduce. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("known vectors", () => {
  const orders: [ByteOrder, number[]][] = [
    ["ABCD", [0x42f6, 0xe979]],
    ["CDAB", [0xe979, 0x42f6]],
    ["BADC", [0xf642, 0x79e9]],
    ["DCBA", [0x79e9, 0xf642]],
  ];
  it.each(orders)("float32 123.456 = 0x42F6E979 in %s", (order, words) => {
    expect(decodeRegisters(words, spec("float32", order))).toBe(123.456);
    expect(encodeRegisters(123.456, spec("float32", order))).toEqual(words);
  });

  const float64: [ByteOrder, number[]][] = [
    ["ABCD", [0x405e, 0xdd2f, 0x1a9f, 0xbe77]],
    ["CDAB", [0xbe77, 0x1a9f, 0xdd2f, 0x405e]],
    ["BADC", [0x5e40, 0x2fdd, 0x9f1a, 0x77be]],
    ["DCBA", [0x77be, 0x9f1a, 0x2fdd, 0x5e40]],
  ];
  it.each(float64)("float64 123.456 = 0x405EDD2F1A9FBE77 in %s (8-letter twin)", (order, words) => {
    expect(decodeRegisters(words, spec("float64", order))).toBe(123.456);
    expect(encodeRegisters(123.456, spec("float64", order))).toEqual(words);
  });

  it("int32 -2 and uint32 0xDEADBEEF", () => {
    expect(decodeRegisters([0xffff, 0xfffe], spec("int32"))).toBe(-2);
    expect(decodeRegisters([0xfffe, 0xffff], spec("int32", "CDAB"))).toBe(-2);
    expect(decodeRegisters([0xdead, 0xbeef], spec("uint32"))).toBe(0xdeadbeef);
    expect(decodeRegisters([0xbeef, 0xdead], spec("uint32", "CDAB"))).toBe(0xdeadbeef);
    expect(decodeRegisters([0xadde, 0xefbe], spec("uint32", "BADC"))).toBe(0xdeadbeef);
    expect(decodeRegisters([0xefbe, 0xadde], spec("uint32", "DCBA"))).toBe(0xdeadbeef);
  });

  it("16-bit types honour the byte swap and ignore the word swap", () => {
    expect(decodeRegisters([0x1234], spec("uint16", "CDAB"))).toBe(0x1234);
    expect(decodeRegisters([0x3412], spec("uint16", "BADC"))).toBe(0x1234);
    expect(decodeRegisters([0x3412], spec("uint16", "DCBA"))).toBe(0x1234);
    expect(decodeRegisters([0xfeff], spec("int16", "BADC"))).toBe(-2);
    expect(encodeRegisters(-2, spec("int16", "DCBA"))).toEqual([0xfeff]);
  });

  it("64-bit integers: numbers while safe, decimal strings beyond", () => {
    const ones = [0xffff, 0xffff, 0xffff, 0xffff];
    expect(decodeRegisters(ones, spec("int64"))).toBe(-1);
    expect(decodeRegisters(ones, spec("uint64"))).toBe("18446744073709551615");
    expect(encodeRegisters("18446744073709551615", spec("uint64"))).toEqual(ones);
    const twoTo53Plus1 = [0x0020, 0, 0, 1];
    expect(decodeRegisters(twoTo53Plus1, spec("uint64"))).toBe("9007199254740993");
    expect(decodeRegisters([1, 0, 0, 0x0020], spec("int64", "CDAB"))).toBe("9007199254740993");
    expect(encodeRegisters("9007199254740993", spec("int64"))).toEqual(twoTo53Plus1);
    expect(decodeRegisters([0x001f, 0xffff, 0xffff, 0xffff], spec("int64"))).toBe(
      Number.MAX_SAFE_INTEGER,
    );
    expect(decodeRegisters([0xffe0, 0, 0, 1], spec("int64"))).toBe(-Number.MAX_SAFE_INTEGER);
    expect(decodeRegisters([0xffe0, 0, 0, 0], spec("int64"))).toBe("-9007199254740992");
    expect(decodeRegisters([0x8000, 0, 0, 0], spec("int64"))).toBe("-9223372036854775808");
  });

  it("strings in both placements, cut at NUL, trailing spaces trimmed", () => {
    const high = [0x4845, 0x4c4c, 0x4f00];
    const low = [0x4548, 0x4c4c, 0x004f];
    expect(decodeRegisters(high, spec("string", "ABCD", { length: 3 }))).toBe("HELLO");
    const lowSpec = spec("string", "ABCD", { length: 3, stringByteOrder: "low_first" });
    expect(decodeRegisters(low, lowSpec)).toBe("HELLO");
    expect(encodeRegisters("HELLO", spec("string", "ABCD", { length: 3 }))).toEqual(high);
    expect(encodeRegisters("HELLO", lowSpec)).toEqual(low);
    expect(decodeRegisters([0x4142, 0x2020, 0x5858], spec("string", "ABCD", { length: 3 }))).toBe(
      "AB  XX",
    );
    expect(decodeRegisters([0x4142, 0x2020, 0x2020], spec("string", "ABCD", { length: 3 }))).toBe(
      "AB",
    );
    expect(decodeRegisters([0x4100, 0x4242], spec("string", "ABCD", { length: 2 }))).toBe("A");
    expect(decodeRegisters([0xe900], spec("string", "ABCD", { length: 1 }))).toBe("é");
  });

  it("bits 0 and 15 of a register", () => {
    const bit = (n: number) => spec("bool", "ABCD", { bit: n });
    expect(decodeRegisters([0x8001], bit(0))).toBe(true);
    expect(decodeRegisters([0x8001], bit(15))).toBe(true);
    expect(decodeRegisters([0x8001], bit(1))).toBe(false);
    expect(decodeRegisters([0x7ffe], bit(15))).toBe(false);
    expect(encodeRegisters(false, bit(15), 0x8001)).toEqual([0x0001]);
    expect(encodeRegisters(true, bit(15), 0x0001)).toEqual([0x8001]);
    expect(encodeRegisters(false, bit(0), 0xffff)).toEqual([0xfffe]);
    expect(encodeRegisters(true, bit(0), 0xfffe)).toEqual([0xffff]);
    // the byte order does not move bits: HR100.3 is bit 3 of the register as read
    expect(decodeRegisters([0x0008], spec("bool", "DCBA", { bit: 3 }))).toBe(true);
  });

  it("scale and offset without binary noise", () => {
    expect(decodeRegisters([3], spec("uint16", "ABCD", { scale: 0.1 }))).toBe(0.3);
    expect(decodeRegisters([1234], spec("int16", "ABCD", { scale: 0.01, offset: -10 }))).toBe(2.34);
    expect(decodeRegisters([0xffff, 0xfff9], spec("int32", "ABCD", { scale: 0.1 }))).toBe(-0.7);
    expect(decodeRegisters([0, 7], spec("int32", "ABCD", { scale: 1e-7 }))).toBe(7e-7);
    expect(decodeRegisters([0, 0, 0, 3], spec("uint64", "ABCD", { scale: 0.1 }))).toBe(0.3);
    expect(encodeRegisters(0.3, spec("uint16", "ABCD", { scale: 0.1 }))).toEqual([3]);
    expect(encodeRegisters(0.35, spec("uint16", "ABCD", { scale: 0.1 }))).toEqual([4]);
    expect(encodeRegisters(2.34, spec("int16", "ABCD", { scale: 0.01, offset: -10 }))).toEqual([
      1234,
    ]);
    // floats keep full precision
    const f64 = spec("float64", "ABCD", { scale: 3 });
    expect(decodeRegisters(encodeRegisters(0.1, spec("float64")), f64)).toBe(0.1 * 3);
  });

  it("floats decode NaN and infinities as numbers", () => {
    expect(decodeRegisters([0x7fc0, 0], spec("float32"))).toBeNaN();
    expect(decodeRegisters([0x7f80, 0], spec("float32"))).toBe(Number.POSITIVE_INFINITY);
    expect(decodeRegisters([0xfff0, 0, 0, 0], spec("float64"))).toBe(Number.NEGATIVE_INFINITY);
  });
});

describe("errors", () => {
  it("rejects too few or malformed registers", () => {
    expect(() => decodeRegisters([1], spec("float32"))).toThrow(/float32 needs 2 register/);
    expect(() => decodeRegisters([70000], spec("uint16"))).toThrow(/70000, not a uint16/);
    expect(() => decodeRegisters([1.5, 0], spec("int32"))).toThrow(/not a uint16/);
    expect(() => decodeRegisters([-1], spec("int16"))).toThrow(/not a uint16/);
    expect(() => registersFor(spec("string"))).toThrow(/length/);
  });

  it("rejects values out of range or of the wrong kind", () => {
    expect(() => encodeRegisters(65536, spec("uint16"))).toThrow(/out of range for uint16/);
    expect(() => encodeRegisters(-1, spec("uint32"))).toThrow(/out of range for uint32/);
    expect(() => encodeRegisters(32768, spec("int16"))).toThrow(/out of range for int16/);
    expect(() => encodeRegisters("18446744073709551616", spec("uint64"))).toThrow(/out of range/);
    expect(() => encodeRegisters(-1, spec("uint64"))).toThrow(/out of range for uint64/);
    expect(() => encodeRegisters(1e39, spec("float32"))).toThrow(/out of range for float32/);
    expect(() => encodeRegisters(Number.NaN, spec("int32"))).toThrow(/cannot write NaN/);
    expect(() => encodeRegisters("abc", spec("int16"))).toThrow(/expected a number/);
    expect(() => encodeRegisters(true, spec("float32"))).toThrow(/expected a number/);
    expect(() => encodeRegisters(7, spec("string", "ABCD", { length: 2 }))).toThrow(
      /expected a string/,
    );
    expect(() => encodeRegisters("HELLO", spec("string", "ABCD", { length: 2 }))).toThrow(
      /longer than 2 registers/,
    );
    expect(() => encodeRegisters("€", spec("string", "ABCD", { length: 2 }))).toThrow(/latin1/);
    expect(() => encodeRegisters(true, spec("bool", "ABCD", { bit: 3 }))).toThrow(/present value/);
    expect(() => encodeRegisters(2, spec("bool"))).toThrow(/expected true or false/);
  });

  it("rounds integers half away from zero", () => {
    expect(encodeRegisters(2.5, spec("int16"))).toEqual([3]);
    expect(encodeRegisters(-2.5, spec("int16"))).toEqual([0xfffd]);
    expect(encodeRegisters("12", spec("uint16"))).toEqual([12]);
  });
});

describe("round trips, every type x every byte order", () => {
  const next = random(20251127);
  const ints: Record<string, [number, number]> = {
    int16: [-0x8000, 0x7fff],
    uint16: [0, 0xffff],
    int32: [-0x8000_0000, 0x7fff_ffff],
    uint32: [0, 0xffff_ffff],
  };
  const values = (type: ModbusType): TagValue[] => {
    const out: TagValue[] = [];
    if (type in ints) {
      const [min, max] = ints[type]!;
      out.push(min, max, 0, 1, min < 0 ? -1 : 2);
      for (let i = 0; i < 200; i++) out.push(Math.floor(min + next() * (max - min + 1)));
    } else if (type === "int64" || type === "uint64") {
      const signed = type === "int64";
      out.push(0, 1, Number.MAX_SAFE_INTEGER, "9007199254740992");
      out.push(signed ? "9223372036854775807" : "18446744073709551615");
      if (signed) out.push("-9223372036854775808", -1, -Number.MAX_SAFE_INTEGER);
      for (let i = 0; i < 200; i++) {
        let big = 0n;
        for (let w = 0; w < 4; w++) big = (big << 16n) | BigInt(Math.floor(next() * 0x10000));
        if (signed) big = BigInt.asIntN(64, big);
        const safe =
          big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= -BigInt(Number.MAX_SAFE_INTEGER);
        out.push(safe ? Number(big) : big.toString());
        const small = Math.floor(next() * 2 ** 40) * (signed && next() < 0.5 ? -1 : 1);
        out.push(small);
      }
    } else {
      const single = type === "float32";
      const max = single ? 3.4028234663852886e38 : Number.MAX_VALUE;
      const tiny = single ? 1.401298464324817e-45 : Number.MIN_VALUE;
      out.push(0, -0, 1, -1, max, -max, tiny, Number.NaN);
      out.push(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 123.456, 0.1);
      for (let i = 0; i < 200; i++) {
        const f = (next() - 0.5) * 10 ** Math.floor(next() * 60 - 30);
        out.push(single ? Math.fround(f) : f);
      }
    }
    return out;
  };
  const numericTypes = ["int16", "uint16", "int32", "uint32", "int64", "uint64"] as const;

  for (const type of [...numericTypes, "float32", "float64"] as const) {
    for (const order of BYTE_ORDERS) {
      it(`${type} ${order}: value -> registers -> value`, () => {
        const s = spec(type, order);
        for (const value of values(type)) {
          const words = encodeRegisters(value, s);
          expect(words).toHaveLength(registersFor(s));
          for (const word of words) expect(word >= 0 && word <= 0xffff).toBe(true);
          const back = decodeRegisters(words, s);
          if (typeof value === "number" && Number.isNaN(value)) expect(back).toBeNaN();
          else if (type === "float32") {
            expect(Math.fround(back as number)).toBe(Math.fround(value as number));
          } else expect(back).toBe(value);
        }
      });

      it(`${type} ${order}: registers -> value -> registers`, () => {
        const s = spec(type, order);
        for (let i = 0; i < 300; i++) {
          const words = Array.from({ length: registersFor(s) }, () => Math.floor(next() * 0x10000));
          const value = decodeRegisters(words, s);
          if (typeof value === "number" && Number.isNaN(value)) continue; // NaN payloads vary
          expect(encodeRegisters(value, s)).toEqual(words);
        }
      });
    }
  }

  it("scaled integers in every order", () => {
    for (const type of numericTypes) {
      for (const order of BYTE_ORDERS) {
        const s = spec(type, order, { scale: 0.1, offset: 5 });
        for (const raw of [0, 1, 3, 999, 32767]) {
          const value = decodeRegisters(encodeRegisters(raw * 0.1 + 5, s), s);
          expect(value).toBe(Number((raw * 0.1 + 5).toFixed(1)));
        }
      }
    }
  });

  it("strings in both placements", () => {
    for (const placement of ["high_first", "low_first"] as const) {
      for (let i = 0; i < 200; i++) {
        const length = 1 + Math.floor(next() * 10);
        const chars = Math.floor(next() * (length * 2 + 1));
        let text = "";
        for (let c = 0; c < chars; c++) text += String.fromCharCode(1 + Math.floor(next() * 255));
        text = text.replace(/ +$/, "");
        const s = spec("string", "ABCD", { length, stringByteOrder: placement });
        expect(decodeRegisters(encodeRegisters(text, s), s)).toBe(text);
      }
    }
  });

  it("register bits", () => {
    for (let bit = 0; bit < 16; bit++) {
      for (const current of [0, 0xffff, 0x5a5a, 0xa5a5]) {
        const s = spec("bool", "ABCD", { bit });
        for (const on of [true, false]) {
          const [word] = encodeRegisters(on, s, current);
          expect(decodeRegisters([word!], s)).toBe(on);
          expect(word! & ~(1 << bit) & 0xffff).toBe(current & ~(1 << bit) & 0xffff);
        }
      }
    }
  });
});
