/**
 * Every interpretation of a raw register range, for commissioning (`plc2mqtt read --decode`):
 * an engineer reads a block of registers and looks for the value the HMI shows.
 *
 * Contract:
 * - At each starting register: int16 and uint16 in both byte placements (AB, BA); int32,
 *   uint32 and float32 in the four orders when two registers remain; int64, uint64 and
 *   float64 in the four orders when four remain; a string of all remaining registers in both
 *   placements. Bools are left out: the raw header shows each register's bits.
 * - Values are decoded by the codec with no scaling, so a row reads exactly as a tag of that
 *   type and order would.
 * - The text table repeats the address on every row (easy to grep), groups rows by address
 *   with a blank line, and stays within 80 columns (long strings are cut with "...").
 */
import { BYTE_ORDERS, type ByteOrder, type ModbusType } from "../../config/modbus-types.ts";
import type { TagValue } from "../../events/sample.ts";
import { byteOrder64, decodeRegisters } from "./codec.ts";

export interface Interpretation {
  /** Registers from the first one read. */
  offset: number;
  type: ModbusType;
  byteOrder?: ByteOrder;
  stringByteOrder?: "high_first" | "low_first";
  value: TagValue;
}

const WIDE_TYPES: readonly [ModbusType, number][] = [
  ["int32", 2],
  ["uint32", 2],
  ["float32", 2],
  ["int64", 4],
  ["uint64", 4],
  ["float64", 4],
];

const STRING_WIDTH = 48;

export function interpretRegisters(words: readonly number[]): Interpretation[] {
  const rows: Interpretation[] = [];
  for (let offset = 0; offset < words.length; offset++) {
    const rest = words.slice(offset);
    for (const type of ["int16", "uint16"] as const) {
      for (const byteOrder of ["ABCD", "BADC"] as const) {
        rows.push({ offset, type, byteOrder, value: decodeRegisters(rest, { type, byteOrder }) });
      }
    }
    for (const [type, width] of WIDE_TYPES) {
      if (rest.length < width) continue;
      for (const byteOrder of BYTE_ORDERS) {
        rows.push({ offset, type, byteOrder, value: decodeRegisters(rest, { type, byteOrder }) });
      }
    }
    for (const stringByteOrder of ["high_first", "low_first"] as const) {
      const spec = { type: "string" as const, byteOrder: "ABCD" as const, stringByteOrder };
      const value = decodeRegisters(rest, { ...spec, length: rest.length });
      rows.push({ offset, type: "string", stringByteOrder, value });
    }
  }
  return rows;
}

export function formatInterpretations(
  words: readonly number[],
  firstAddress: string,
  rows: Interpretation[],
): string {
  const addressAt = addressNamer(firstAddress);
  const lines: string[] = [];
  const last = words.length > 0 ? ` .. ${addressAt(words.length - 1)}` : "";
  lines.push(`${addressAt(0)}${last}: ${words.length} register(s)`, "");
  lines.push(row("register", "hex", "dec", "bits (15..0)"));
  words.forEach((word, i) => {
    const hex = `0x${word.toString(16).toUpperCase().padStart(4, "0")}`;
    const bits = word
      .toString(2)
      .padStart(16, "0")
      .replace(/(\d{4})(?=\d)/g, "$1 ");
    lines.push(row(addressAt(i), hex, String(word), bits));
  });
  lines.push("", row("address", "type", "order", "value"));
  let previous: number | undefined;
  for (const item of rows) {
    if (previous !== undefined && item.offset !== previous) lines.push("");
    previous = item.offset;
    lines.push(row(addressAt(item.offset), item.type, orderLabel(item), formatValue(item)));
  }
  return `${lines.join("\n")}\n`;
}

function row(a: string, b: string, c: string, d: string): string {
  return `${a.padEnd(10)} ${b.padEnd(8)} ${c.padEnd(10)} ${d}`.trimEnd();
}

function orderLabel(item: Interpretation): string {
  if (item.type === "string") return item.stringByteOrder === "low_first" ? "low 1st" : "high 1st";
  const order = item.byteOrder ?? "ABCD";
  if (item.type === "int16" || item.type === "uint16" || item.type === "bool") {
    return order === "BADC" || order === "DCBA" ? "BA" : "AB";
  }
  if (item.type === "int64" || item.type === "uint64" || item.type === "float64") {
    return byteOrder64(order);
  }
  return order;
}

/** Strings quoted (cut to fit), 64-bit integers carried as strings shown bare. */
function formatValue({ type, value }: Interpretation): string {
  if (type === "string" && typeof value === "string") {
    const quoted = JSON.stringify(value);
    return quoted.length > STRING_WIDTH ? `${quoted.slice(0, STRING_WIDTH - 3)}...` : quoted;
  }
  if (typeof value === "number" || typeof value === "string") return String(value);
  return JSON.stringify(value);
}

/**
 * Names the register `offset` places after the first: HR100 -> HR101, 40101 -> 40102
 * (Modicon keeps its digit count); any other text gets "+offset".
 */
function addressNamer(first: string): (offset: number) => string {
  const trimmed = first.trim();
  const prefixed = /^([A-Za-z]+)(\d+)$/.exec(trimmed);
  if (prefixed) return (offset) => `${prefixed[1]!.toUpperCase()}${Number(prefixed[2]) + offset}`;
  const modicon = /^\d{5,6}$/.exec(trimmed);
  if (modicon) {
    return (offset) => String(Number(trimmed) + offset).padStart(trimmed.length, "0");
  }
  return (offset) => (offset === 0 ? trimmed : `${trimmed}+${offset}`);
}
