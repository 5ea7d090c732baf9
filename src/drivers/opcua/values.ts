/**
 * DataValue -> TagSample. The configured type governs the value's JSON type (STYLE habit 7);
 * without one, the variable's DataType read at connect does (the variant's as a last resort).
 *
 *   boolean                 true/false (numbers: non-zero)
 *   sbyte..uint32, float,   numbers
 *   double
 *   int64, uint64           numbers within +-2^53, decimal strings beyond
 *   string, guid            strings
 *   datetime                ISO 8601 string
 *   bytestring              base64 string
 *   localizedtext           its text
 *   statuscode              its name ("UncertainLastUsableValue")
 *   json                    any of the above by the variant's type; arrays as JSON arrays,
 *                           structures as their JSON form
 * Arrays of any type become JSON arrays of converted elements. A value that cannot take the
 * configured type makes the sample bad with the reason. Status: Good* -> good, Uncertain* ->
 * uncertain (value kept), Bad* -> bad (value null); a status other than plain Good is the
 * reason. The source timestamp becomes sourceTime.
 */
import type { OpcuaType } from "../../config/schema/opcua.ts";
import type { Quality, TagValue } from "../types.ts";

/** Built-in DataType ids of OPC UA (ns=0) as the config's type names. */
const BUILT_IN: Record<number, OpcuaType> = {
  1: "boolean",
  2: "sbyte",
  3: "byte",
  4: "int16",
  5: "uint16",
  6: "int32",
  7: "uint32",
  8: "int64",
  9: "uint64",
  10: "float",
  11: "double",
  12: "string",
  13: "datetime",
  14: "guid",
  15: "bytestring",
  19: "statuscode",
  21: "localizedtext",
};

/** The config type of a DataType node id in namespace 0; anything else is json. */
export function typeOfDataType(namespace: number, id: unknown): OpcuaType {
  return (namespace === 0 && typeof id === "number" ? BUILT_IN[id] : undefined) ?? "json";
}

const INT64 = 8;
const UINT64 = 9;

export interface RawDataValue {
  value?: { dataType: number; value: unknown } | null;
  statusCode: { value: number; name: string };
  sourceTimestamp?: Date | null;
}

export interface Converted {
  value: TagValue;
  quality: Quality;
  reason?: string;
  sourceTime?: number;
}

class Mismatch extends Error {}

function bigOf(raw: unknown, dataType: number): bigint | undefined {
  if (typeof raw === "bigint") return raw;
  if ((dataType === INT64 || dataType === UINT64) && Array.isArray(raw) && raw.length === 2) {
    const u = (BigInt(raw[0] as number) << 32n) | BigInt(raw[1] as number);
    return dataType === INT64 ? BigInt.asIntN(64, u) : u;
  }
  return undefined;
}

function intValue(big: bigint): TagValue {
  const safe = big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= -BigInt(Number.MAX_SAFE_INTEGER);
  return safe ? Number(big) : big.toString();
}

function isoOf(raw: unknown): TagValue {
  if (!(raw instanceof Date) || Number.isNaN(raw.getTime())) return null;
  return raw.toISOString();
}

function textOf(raw: unknown): string | undefined {
  if (typeof raw === "string") return raw;
  if (raw && typeof raw === "object" && "text" in raw) return String(raw.text ?? "");
  return undefined;
}

function nameOf(raw: unknown): string | undefined {
  if (raw && typeof raw === "object" && "name" in raw && typeof raw.name === "string")
    return raw.name;
  return undefined;
}

/** Any value as JSON, by what it is. */
function generic(raw: unknown, dataType: number): TagValue {
  const big = bigOf(raw, dataType);
  if (big !== undefined) return intValue(big);
  if (raw === null || raw === undefined) return null;
  if (typeof raw === "boolean" || typeof raw === "string") return raw;
  if (typeof raw === "number") return raw;
  if (raw instanceof Date) return isoOf(raw);
  if (Buffer.isBuffer(raw) || raw instanceof Uint8Array) return Buffer.from(raw).toString("base64");
  if (dataType === 21) return textOf(raw) ?? null;
  if (dataType === 19) return nameOf(raw) ?? null;
  if (dataType === 17 || dataType === 18) return String(raw);
  try {
    return JSON.parse(JSON.stringify(raw, (_k, v) => (typeof v === "bigint" ? String(v) : v)));
  } catch {
    return String(raw);
  }
}

function scalar(raw: unknown, dataType: number, type: OpcuaType): TagValue {
  const big = bigOf(raw, dataType);
  switch (type) {
    case "boolean":
      if (typeof raw === "boolean") return raw;
      if (typeof raw === "number") return raw !== 0;
      if (big !== undefined) return big !== 0n;
      break;
    case "sbyte":
    case "byte":
    case "int16":
    case "uint16":
    case "int32":
    case "uint32":
    case "int64":
    case "uint64":
      if (big !== undefined) return intValue(big);
      if (typeof raw === "number" && Number.isFinite(raw)) return Math.trunc(raw);
      if (typeof raw === "boolean") return raw ? 1 : 0;
      break;
    case "float":
    case "double":
      if (typeof raw === "number") return raw;
      if (big !== undefined) return Number(big);
      if (typeof raw === "boolean") return raw ? 1 : 0;
      break;
    case "string":
    case "guid":
      if (typeof raw === "string") return raw;
      if (raw === null || raw === undefined) return null;
      return String(generic(raw, dataType));
    case "datetime":
      if (raw instanceof Date || raw === null) return isoOf(raw);
      break;
    case "bytestring":
      if (raw === null || raw === undefined) return null;
      if (raw instanceof Uint8Array) return Buffer.from(raw).toString("base64");
      break;
    case "localizedtext": {
      const text = textOf(raw);
      if (text !== undefined) return text;
      if (raw === null) return null;
      break;
    }
    case "statuscode": {
      const name = nameOf(raw);
      if (name !== undefined) return name;
      break;
    }
    case "json":
      return generic(raw, dataType);
  }
  throw new Mismatch(`the ${type} tag got a ${typeof raw} value (data type ${dataType})`);
}

/** A variant's value in the configured type; arrays element by element. */
export function convertValue(raw: unknown, dataType: number, type: OpcuaType): TagValue {
  const isBig = (dataType === INT64 || dataType === UINT64) && Array.isArray(raw);
  const pairs = isBig && raw.length > 0 && Array.isArray(raw[0]);
  if ((Array.isArray(raw) && (!isBig || pairs)) || ArrayBuffer.isView(raw)) {
    if (Buffer.isBuffer(raw) && (dataType === 15 || type === "bytestring"))
      return scalar(raw, dataType, type);
    return Array.from(raw as ArrayLike<unknown>, (item) => scalar(item, dataType, type));
  }
  return scalar(raw, dataType, type);
}

export function qualityOf(status: { value: number; name: string }): {
  quality: Quality;
  reason?: string;
} {
  const severity = (status.value >>> 30) & 3;
  const quality: Quality = severity === 0 ? "good" : severity === 1 ? "uncertain" : "bad";
  return status.name === "Good" ? { quality } : { quality, reason: status.name };
}

export function convertDataValue(dv: RawDataValue, type: OpcuaType): Converted {
  const { quality, reason } = qualityOf(dv.statusCode);
  const ts = dv.sourceTimestamp;
  const sourceTime = ts instanceof Date && !Number.isNaN(ts.getTime()) ? ts.getTime() : undefined;
  const base = sourceTime === undefined ? {} : { sourceTime };
  if (quality === "bad") return { value: null, quality, reason: reason ?? "bad", ...base };
  try {
    const variant = dv.value;
    const value = variant ? convertValue(variant.value, variant.dataType, type) : null;
    return reason === undefined ? { value, quality, ...base } : { value, quality, reason, ...base };
  } catch (err) {
    if (!(err instanceof Mismatch)) throw err;
    return { value: null, quality: "bad", reason: err.message, ...base };
  }
}
