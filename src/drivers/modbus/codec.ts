/**
 * Modbus register codecs: typed values to and from uint16 registers.
 *
 * Contract:
 * - `words[0]` is the register at the lowest address. A byte order names where each byte of
 *   the big-endian value sits on the wire (A = most significant): the word swap (CDAB, DCBA)
 *   reverses the order of all registers of the value, the byte swap (BADC, DCBA) swaps the
 *   two bytes inside each register. So a 4-letter order applies to 64-bit values as its
 *   8-letter twin (CDAB = GHEFCDAB) and to 16-bit values as AB or BA.
 * - A bool with `bit` is bit 0 (least significant) to 15 of the register value as received;
 *   the byte order does not move bits. A bool without `bit` is "register is not zero".
 * - value = raw * scale + offset (defaults 1, 0). Scaled integers are rounded to the decimals
 *   of scale and offset, so 3 * 0.1 gives 0.3; floats are not rounded. A float32 decodes to
 *   the shortest decimal that is the same float32 (0x42F6E979 gives 123.456), which loses
 *   nothing: encoding it gives the same bits back.
 * - int64/uint64 without scaling are numbers while |value| <= Number.MAX_SAFE_INTEGER and
 *   decimal strings beyond; with scaling they are numbers. Floats may decode to NaN or
 *   +-Infinity: the engine decides what that means.
 * - Strings span `length` registers, latin1, the first character in the high byte
 *   (high_first, default) or the low byte (low_first); decoding cuts at the first NUL and
 *   trims trailing spaces, encoding pads with NUL.
 * - Encoders are exact inverses for every type; they remove scale/offset, round integers half
 *   away from zero and throw a plain Error with a clear message when a value does not fit.
 */
import {
  BYTE_ORDERS,
  BYTE_ORDERS_64,
  type ByteOrder,
  type ModbusType,
  REGISTER_WIDTH,
} from "../../config/modbus-types.ts";
import type { TagValue } from "../../events/sample.ts";

export interface CodecSpec {
  type: ModbusType;
  /** Canonical 4-letter order; applies to 64-bit values as its 8-letter twin. */
  byteOrder: ByteOrder;
  /** Strings: registers (2 characters each). */
  length?: number;
  /** Strings: which byte of a register holds the first character (default high_first). */
  stringByteOrder?: "high_first" | "low_first";
  /** A bool held in bit 0..15 of a register. */
  bit?: number;
  scale?: number;
  offset?: number;
}

type NumericType = Exclude<ModbusType, "bool" | "string">;

const INT_RANGE: Record<"int16" | "uint16" | "int32" | "uint32", [number, number]> = {
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x8000_0000, 0x7fff_ffff],
  uint32: [0, 0xffff_ffff],
};
const BIG_RANGE: Record<"int64" | "uint64", [bigint, bigint]> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};
const FLOAT32_MAX = 3.4028234663852886e38;

/** The 8-letter form of a 4-letter order, for messages and tables. */
export function byteOrder64(order: ByteOrder): (typeof BYTE_ORDERS_64)[number] {
  return BYTE_ORDERS_64[BYTE_ORDERS.indexOf(order)]!;
}

export function registersFor(spec: CodecSpec): number {
  if (spec.type === "string") {
    const length = spec.length;
    if (length === undefined || !Number.isInteger(length) || length < 1) {
      throw new Error(`a string needs a length in registers, got ${String(length)}`);
    }
    return length;
  }
  return REGISTER_WIDTH[spec.type];
}

export function decodeRegisters(words: ArrayLike<number>, spec: CodecSpec): TagValue {
  const count = registersFor(spec);
  checkWords(words, count, spec.type);
  if (spec.type === "bool") {
    const word = words[0]!;
    return spec.bit === undefined ? word !== 0 : ((word >> checkBit(spec.bit)) & 1) === 1;
  }
  if (spec.type === "string") return decodeString(words, count, spec.stringByteOrder);
  const view = toBigEndian(words, count, spec.byteOrder);
  const scale = spec.scale ?? 1;
  const offset = spec.offset ?? 0;
  switch (spec.type) {
    case "int16":
      return scaleInteger(view.getInt16(0), scale, offset);
    case "uint16":
      return scaleInteger(view.getUint16(0), scale, offset);
    case "int32":
      return scaleInteger(view.getInt32(0), scale, offset);
    case "uint32":
      return scaleInteger(view.getUint32(0), scale, offset);
    case "int64":
    case "uint64": {
      const raw = spec.type === "int64" ? view.getBigInt64(0) : view.getBigUint64(0);
      if (scale === 1 && offset === 0) {
        const safe =
          raw <= BigInt(Number.MAX_SAFE_INTEGER) && raw >= -BigInt(Number.MAX_SAFE_INTEGER);
        return safe ? Number(raw) : raw.toString();
      }
      return scaleInteger(Number(raw), scale, offset);
    }
    case "float32":
      return scaleFloat(shortestFloat32(view.getFloat32(0)), scale, offset);
    case "float64":
      return scaleFloat(view.getFloat64(0), scale, offset);
  }
}

export function encodeRegisters(value: TagValue, spec: CodecSpec, current?: number): number[] {
  const count = registersFor(spec);
  if (spec.type === "bool") return encodeBool(value, spec.bit, current);
  if (spec.type === "string") return encodeString(value, count, spec.stringByteOrder);
  const view = new DataView(new ArrayBuffer(count * 2));
  const raw = unscale(value, spec);
  const type: NumericType = spec.type;
  switch (type) {
    case "int16":
    case "uint16":
    case "int32":
    case "uint32": {
      const int = roundInteger(raw, type);
      const [min, max] = INT_RANGE[type];
      if (int < min || int > max) throw outOfRange(value, type, `${min}..${max}`);
      if (type === "int16") view.setInt16(0, int);
      else if (type === "uint16") view.setUint16(0, int);
      else if (type === "int32") view.setInt32(0, int);
      else view.setUint32(0, int);
      break;
    }
    case "int64":
    case "uint64": {
      const big = typeof raw === "bigint" ? raw : BigInt(roundInteger(raw, type));
      const [min, max] = BIG_RANGE[type];
      if (big < min || big > max) throw outOfRange(value, type, `${min}..${max}`);
      if (type === "int64") view.setBigInt64(0, big);
      else view.setBigUint64(0, big);
      break;
    }
    case "float32": {
      const float = toFloat(raw);
      // Beyond the largest float32 (plus half an ulp) a finite value would become Infinity.
      if (Number.isFinite(float) && !Number.isFinite(Math.fround(float))) {
        throw outOfRange(value, type, `+-${FLOAT32_MAX}`);
      }
      view.setFloat32(0, float);
      break;
    }
    case "float64":
      view.setFloat64(0, toFloat(raw));
      break;
  }
  return fromBigEndian(view, count, spec.byteOrder);
}

/* ---------- byte order ---------- */

function swapsWords(order: ByteOrder): boolean {
  return order === "CDAB" || order === "DCBA";
}
function swapsBytes(order: ByteOrder): boolean {
  return order === "BADC" || order === "DCBA";
}

/**
 * The bytes toBigEndian writes a value into: one for all, read before the next decode (decoding
 * is synchronous). A buffer per decode cost an ArrayBuffer per register read (issue 12: 100,000
 * a second at 10,000 registers).
 */
const SCRATCH = new DataView(new ArrayBuffer(8));

/**
 * The value's bytes, most significant first, from registers as received (at most 4: a numeric
 * type), in SCRATCH: read them before the next call.
 */
function toBigEndian(words: ArrayLike<number>, count: number, order: ByteOrder): DataView {
  const view = SCRATCH;
  for (let i = 0; i < count; i++) {
    const word = words[swapsWords(order) ? count - 1 - i : i]!;
    view.setUint16(i * 2, swapsBytes(order) ? swap16(word) : word);
  }
  return view;
}

/** Registers to send, lowest address first, from the value's big-endian bytes. */
function fromBigEndian(view: DataView, count: number, order: ByteOrder): number[] {
  const words: number[] = [];
  for (let i = 0; i < count; i++) {
    const word = view.getUint16(i * 2);
    words.push(swapsBytes(order) ? swap16(word) : word);
  }
  return swapsWords(order) ? words.reverse() : words;
}

function swap16(word: number): number {
  return ((word & 0xff) << 8) | (word >> 8);
}

function checkWords(words: ArrayLike<number>, count: number, type: ModbusType): void {
  if (words.length < count) {
    throw new Error(`${type} needs ${count} register(s), got ${words.length}`);
  }
  for (let i = 0; i < count; i++) {
    const word = words[i];
    if (typeof word !== "number" || !Number.isInteger(word) || word < 0 || word > 0xffff) {
      throw new Error(`register ${i} of a ${type} is ${String(word)}, not a uint16 (0..65535)`);
    }
  }
}

function checkBit(bit: number): number {
  if (!Number.isInteger(bit) || bit < 0 || bit > 15) {
    throw new Error(`bit ${bit} is not a register bit (0..15)`);
  }
  return bit;
}

/* ---------- scaling ---------- */

/** Digits after the decimal point in the shortest form of n (0.1 -> 1, 1e-7 -> 7). */
function decimalsOf(n: number): number {
  const match = /^\d+(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(Math.abs(n)));
  if (!match) return 0;
  return Math.max(0, (match[1]?.length ?? 0) - Number(match[2] ?? 0));
}

function scaleInteger(raw: number, scale: number, offset: number): number {
  if (scale === 1 && offset === 0) return raw;
  const value = raw * scale + offset;
  const decimals = Math.max(decimalsOf(scale), decimalsOf(offset));
  // An integer times a d-decimal scale has at most d decimals: round the binary noise away.
  if (!Number.isFinite(value) || decimals > 20) return value;
  return Number(value.toFixed(decimals));
}

function scaleFloat(raw: number, scale: number, offset: number): number {
  return scale === 1 && offset === 0 ? raw : raw * scale + offset;
}

/** The shortest decimal that converts back to the same float32. */
export function shortestFloat32(f: number): number {
  if (!Number.isFinite(f) || f === 0) return f;
  for (let precision = 1; precision < 10; precision++) {
    const candidate = Number(f.toPrecision(precision));
    if (Math.fround(candidate) === f) return candidate;
  }
  return f;
}

/** The raw value before scaling: a bigint only for unscaled 64-bit integers. */
function unscale(value: TagValue, spec: CodecSpec): number | bigint {
  const scale = spec.scale ?? 1;
  const offset = spec.offset ?? 0;
  const is64 = spec.type === "int64" || spec.type === "uint64";
  if (is64 && scale === 1 && offset === 0 && typeof value === "string") {
    if (/^\s*[+-]?\d+\s*$/.test(value)) return BigInt(value.trim());
  }
  const number = toNumber(value, spec.type);
  if (scale === 1 && offset === 0) return number;
  if (scale === 0) throw new Error(`cannot write ${spec.type} with scale 0`);
  const raw = (number - offset) / scale;
  if (spec.type === "float32" || spec.type === "float64" || !Number.isFinite(raw)) return raw;
  // (0.3 - 0) / 0.1 is 2.9999999999999996: trim the noise before an integer is rounded.
  return Number(raw.toPrecision(15));
}

function toNumber(value: TagValue, type: ModbusType): number {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(value)) {
    return Number(value);
  }
  if (typeof value === "string" && /^\s*[+-]?(NaN|Infinity)\s*$/.test(value)) {
    return Number(value);
  }
  throw new Error(`cannot write ${describe(value)} as ${type}: expected a number`);
}

function toFloat(raw: number | bigint): number {
  return typeof raw === "bigint" ? Number(raw) : raw;
}

function roundInteger(raw: number | bigint, type: ModbusType): number {
  const number = toFloat(raw);
  if (!Number.isFinite(number)) throw new Error(`cannot write ${number} as ${type}`);
  return Math.sign(number) * Math.round(Math.abs(number)) || 0;
}

function outOfRange(value: TagValue, type: ModbusType, range: string): Error {
  return new Error(`value ${describe(value)} is out of range for ${type} (${range})`);
}

function describe(value: TagValue): string {
  return typeof value === "number" ? String(value) : String(JSON.stringify(value));
}

/* ---------- bool ---------- */

function encodeBool(value: TagValue, bit: number | undefined, current?: number): number[] {
  let on: boolean;
  if (typeof value === "boolean") on = value;
  else if (value === 0 || value === 1) on = value === 1;
  else throw new Error(`cannot write ${describe(value)} as bool: expected true or false`);
  if (bit === undefined) return [on ? 1 : 0];
  checkBit(bit);
  if (current === undefined) {
    throw new Error(`writing bit ${bit} needs the register's present value`);
  }
  checkWords([current], 1, "bool");
  return [on ? current | (1 << bit) : current & ~(1 << bit) & 0xffff];
}

/* ---------- strings ---------- */

function decodeString(
  words: ArrayLike<number>,
  count: number,
  placement: "high_first" | "low_first" = "high_first",
): string {
  const bytes = Buffer.alloc(count * 2);
  for (let i = 0; i < count; i++) {
    const word = words[i]!;
    bytes.writeUInt16BE(placement === "high_first" ? word : swap16(word), i * 2);
  }
  const nul = bytes.indexOf(0);
  return bytes
    .subarray(0, nul < 0 ? bytes.length : nul)
    .toString("latin1")
    .replace(/ +$/, "");
}

function encodeString(
  value: TagValue,
  count: number,
  placement: "high_first" | "low_first" = "high_first",
): number[] {
  if (typeof value !== "string") {
    throw new Error(`cannot write ${describe(value)} as string: expected a string`);
  }
  if ([...value].some((char) => char.charCodeAt(0) > 0xff)) {
    throw new Error(`string ${JSON.stringify(value)} has characters outside latin1`);
  }
  if (value.length > count * 2) {
    throw new Error(
      `string ${JSON.stringify(value)} is ${value.length} bytes, longer than ${count} registers (${count * 2} bytes)`,
    );
  }
  const bytes = Buffer.alloc(count * 2);
  bytes.write(value, "latin1");
  const words: number[] = [];
  for (let i = 0; i < count; i++) {
    const word = bytes.readUInt16BE(i * 2);
    words.push(placement === "high_first" ? word : swap16(word));
  }
  return words;
}
