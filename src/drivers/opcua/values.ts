/**
 * DataValue -> TagSample. The configured type governs the value's JSON type (STYLE habit 7);
 * without one, the variable's DataType read at connect does (resolve.ts).
 *
 * Types in the gateway's names; the OPC UA aliases (boolean, sbyte, byte, float, double) are
 * the same types, and messages name the type as configured.
 *
 *   bool                    true/false, from Boolean only
 *   int8..uint64            numbers (int64/uint64 beyond +-2^53 as decimal strings), from
 *                           integers whose value is in range and from whole Float/Double values
 *   float32, float64        numbers, from Float/Double and integers, when exact in that type
 *   string, guid            strings, from String / Guid
 *   datetime                ISO 8601 string, from DateTime
 *   bytestring              base64 string, from ByteString
 *   localizedtext           its text, from LocalizedText
 *   statuscode              its name ("UncertainLastUsableValue"), from StatusCode
 *   <type>[]                a JSON array of <type>, from a one-dimensional array variant
 *   json                    anything by the variant's type; arrays as JSON arrays, structures
 *                           as their JSON form
 *
 * Invariant (issue 11.8): a value that does not fit its configured type exactly is never good.
 * A variant of another kind (type-fit.ts), an array on a scalar type or the reverse is bad with
 * OPCUA_TYPE_MISMATCH; a value that would be cut, rounded or out of range (129 as int8, 58.7 as
 * int32) is bad with OPCUA_VALUE_RANGE; an array on a tag with states, alarms or a trigger is
 * bad with OPCUA_ARRAY_VALUE (issue 11.11). Each reason names the value's and the configured
 * type. Status: Good* -> good, Uncertain* -> uncertain (value kept), Bad* -> bad (value null);
 * a status other than plain Good is the reason and its name the reasonCode. The source timestamp
 * becomes sourceTime.
 */
import {
  type CanonicalOpcuaType,
  canonicalScalar,
  elementType,
  type OpcuaScalarName,
  type OpcuaScalarType,
  type OpcuaType,
} from "../../config/schema/opcua.ts";
import type { Quality, TagValue } from "../types.ts";
import { BUILT_IN_NAMES, fitOf, intRangeOf } from "./type-fit.ts";

/** Built-in DataType ids of OPC UA (ns=0) as the gateway's type names. */
const BUILT_IN: Record<number, OpcuaScalarType> = {
  1: "bool",
  2: "int8",
  3: "uint8",
  4: "int16",
  5: "uint16",
  6: "int32",
  7: "uint32",
  8: "int64",
  9: "uint64",
  10: "float32",
  11: "float64",
  12: "string",
  13: "datetime",
  14: "guid",
  15: "bytestring",
  19: "statuscode",
  21: "localizedtext",
};

/**
 * The gateway's type of a DataType node id in namespace 0 (Double: float64), as `browse` writes
 * it and as a tag without `type` takes it; json for anything else.
 */
export function gatewayTypeOfDataType(namespace: number, id: unknown): CanonicalOpcuaType {
  return (namespace === 0 && typeof id === "number" ? BUILT_IN[id] : undefined) ?? "json";
}

const INT64 = 8;
const UINT64 = 9;
const BYTE_STRING = 15;
/** VariantArrayType: 0 scalar, 1 array, 2 matrix. */
const MATRIX = 2;

export interface RawDataValue {
  value?: { dataType: number; arrayType?: number; value: unknown } | null;
  statusCode: { value: number; name: string };
  sourceTimestamp?: Date | null;
}

export type MisfitCode = "OPCUA_TYPE_MISMATCH" | "OPCUA_VALUE_RANGE" | "OPCUA_ARRAY_VALUE";

export interface Converted {
  value: TagValue;
  quality: Quality;
  reason?: string;
  reasonCode?: string;
  sourceTime?: number;
}

export interface ConvertOptions {
  /** The variant's VariantArrayType (0 scalar, 1 array, 2 matrix); guessed when absent. */
  arrayType?: number;
  /** The tag has states, alarms or a trigger: an array value is bad (OPCUA_ARRAY_VALUE). */
  scalarOnly?: boolean;
}

/** A value that does not fit the configured type: the sample is bad with this reason. */
export class Misfit extends Error {
  readonly code: MisfitCode;
  constructor(message: string, code: MisfitCode) {
    super(message);
    this.code = code;
  }
}

function nameOfType(dataType: number): string {
  return BUILT_IN_NAMES[dataType] ?? `DataType ${dataType}`;
}

function mismatch(dataType: number, array: boolean, type: string): Misfit {
  const shown = `${nameOfType(dataType)}${array ? "[]" : ""}`;
  return new Misfit(
    `value of type ${shown} does not fit configured type ${type}`,
    "OPCUA_TYPE_MISMATCH",
  );
}

function outOfRange(shown: string, dataType: number, type: string, why: string): Misfit {
  return new Misfit(
    `value ${shown.slice(0, 40)} of type ${nameOfType(dataType)} does not fit configured type ${type}: ${why}`,
    "OPCUA_VALUE_RANGE",
  );
}

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

/** Configured types whose value may be null (an empty text, no date, no bytes). */
const NULLABLE = new Set<OpcuaScalarType>([
  "string",
  "guid",
  "datetime",
  "bytestring",
  "localizedtext",
]);

/** An integer variant (or a whole Float/Double) as an integer of `type`, range checked. */
function integer(raw: unknown, dataType: number, type: OpcuaScalarType, shown: string): TagValue {
  let big = bigOf(raw, dataType);
  if (big === undefined && typeof raw === "number") {
    if (!Number.isFinite(raw))
      throw outOfRange(String(raw), dataType, shown, "not a finite number");
    if (!Number.isInteger(raw))
      throw outOfRange(String(raw), dataType, shown, "not a whole number");
    big = BigInt(raw);
  }
  if (big === undefined) throw mismatch(dataType, false, shown);
  const [low, high] = intRangeOf(type)!;
  if (big < low || big > high)
    throw outOfRange(String(big), dataType, shown, `out of range ${low}..${high}`);
  return intValue(big);
}

/** A numeric variant as a float32 or float64, when exact in that type. */
function floating(
  raw: unknown,
  dataType: number,
  type: "float32" | "float64",
  shown: string,
): TagValue {
  const exact = (n: number) => type === "float64" || Number.isNaN(n) || Math.fround(n) === n;
  const why = `not exact as a ${type === "float32" ? 32 : 64}-bit float`;
  const big = bigOf(raw, dataType);
  if (big !== undefined) {
    const n = Number(big);
    if (BigInt(n) !== big || !exact(n)) throw outOfRange(String(big), dataType, shown, why);
    return n;
  }
  if (typeof raw !== "number") throw mismatch(dataType, false, shown);
  if (!exact(raw)) throw outOfRange(String(raw), dataType, shown, why);
  return raw;
}

/** One value as `type` (the gateway's name); messages name the type as configured (`shown`). */
function scalar(raw: unknown, dataType: number, type: OpcuaScalarType, shown: string): TagValue {
  if (raw === null || raw === undefined || dataType === 0) {
    if (NULLABLE.has(type)) return null;
    throw mismatch(0, false, shown);
  }
  if (fitOf(dataType, type) === "never") throw mismatch(dataType, false, shown);
  let value: TagValue | undefined;
  switch (type) {
    case "float32":
    case "float64":
      return floating(raw, dataType, type, shown);
    case "bool":
      value = typeof raw === "boolean" ? raw : undefined;
      break;
    case "string":
      value = typeof raw === "string" ? raw : undefined;
      break;
    case "guid":
      value = String(raw);
      break;
    case "datetime":
      value = isoOf(raw);
      break;
    case "bytestring":
      value = raw instanceof Uint8Array ? Buffer.from(raw).toString("base64") : undefined;
      break;
    case "localizedtext":
      value = textOf(raw);
      break;
    case "statuscode":
      value = nameOf(raw);
      break;
    default:
      return integer(raw, dataType, type, shown);
  }
  if (value === undefined) throw mismatch(dataType, false, shown);
  return value;
}

/** Whether a variant holds an array (by its VariantArrayType, else by the value's shape). */
function isArrayVariant(raw: unknown, dataType: number, arrayType: number | undefined): boolean {
  if (arrayType !== undefined) return arrayType !== 0;
  if (dataType === BYTE_STRING && raw instanceof Uint8Array) return false;
  if ((dataType === INT64 || dataType === UINT64) && Array.isArray(raw))
    return raw.length === 0 || Array.isArray(raw[0]);
  return Array.isArray(raw) || ArrayBuffer.isView(raw);
}

/** A variant's value in the configured type, or a Misfit saying why it does not fit. */
export function convertValue(
  raw: unknown,
  dataType: number,
  type: OpcuaType,
  options: ConvertOptions = {},
): TagValue {
  const array = isArrayVariant(raw, dataType, options.arrayType);
  if (array && options.scalarOnly) {
    throw new Misfit(
      `array value of type ${nameOfType(dataType)}[] on a tag with states, alarms or a trigger (configured type ${type})`,
      "OPCUA_ARRAY_VALUE",
    );
  }
  if (type === "json") {
    return array
      ? Array.from(raw as ArrayLike<unknown>, (item) => generic(item, dataType))
      : generic(raw, dataType);
  }
  const element = elementType(type);
  if (array !== (element !== undefined) || options.arrayType === MATRIX)
    throw mismatch(dataType, array, type);
  if (element === undefined)
    return scalar(raw, dataType, canonicalScalar(type as OpcuaScalarName), type);
  const shownElement = type.slice(0, -2);
  return Array.from(raw as ArrayLike<unknown>, (item, i) => {
    try {
      return scalar(item, dataType, element, shownElement);
    } catch (err) {
      if (err instanceof Misfit) throw new Misfit(`element ${i}: ${err.message}`, err.code);
      throw err;
    }
  });
}

export function qualityOf(status: { value: number; name: string }): {
  quality: Quality;
  reason?: string;
} {
  const severity = (status.value >>> 30) & 3;
  const quality: Quality = severity === 0 ? "good" : severity === 1 ? "uncertain" : "bad";
  return status.name === "Good" ? { quality } : { quality, reason: status.name };
}

export function convertDataValue(
  dv: RawDataValue,
  type: OpcuaType,
  options: { scalarOnly?: boolean } = {},
): Converted {
  const { quality, reason } = qualityOf(dv.statusCode);
  const ts = dv.sourceTimestamp;
  const sourceTime = ts instanceof Date && !Number.isNaN(ts.getTime()) ? ts.getTime() : undefined;
  const base = sourceTime === undefined ? {} : { sourceTime };
  const why = reason === undefined ? {} : { reason, reasonCode: reason };
  if (quality === "bad") return { value: null, quality, reason: reason ?? "bad", ...why, ...base };
  try {
    const variant = dv.value;
    const value = variant
      ? convertValue(variant.value, variant.dataType, type, {
          ...options,
          ...(variant.arrayType === undefined ? {} : { arrayType: variant.arrayType }),
        })
      : null;
    return { value, quality, ...why, ...base };
  } catch (err) {
    if (!(err instanceof Misfit)) throw err;
    return { value: null, quality: "bad", reason: err.message, reasonCode: err.code, ...base };
  }
}
