/**
 * Whether an OPC UA value type fits a configured type (issue 11.8): the one table the connect
 * check (the variable's DataType and ValueRank) and the run-time conversion (each variant)
 * share. Pure.
 *
 * A server type FITS a configured type when every value it can hold is a value of the
 * configured type, unchanged: the same type, or a wider one of the same kind (Int16 into int32,
 * Float into float64, Byte into float32). Where only some values fit (a narrower integer, a
 * fractional into an integer, Double into float32, Int64 into float64) the fit is CHECK: each
 * value is checked at run time, and one that would be cut, rounded or out of range is bad with
 * OPCUA_VALUE_RANGE. Across kinds (Int32 as bool, String as float64, Boolean as int32) it is
 * NEVER: bad with OPCUA_TYPE_MISMATCH. json takes anything.
 *
 * At connect a concrete DataType must fit (CHECK is a mismatch there too: Double as int32 is
 * refused before its first value, not when a value happens to have a fraction); an abstract one
 * (BaseDataType, Number, Integer, UInteger) decides nothing yet unless NEVER, and each value is
 * checked. Enumerations carry Int32 values; other DataTypes count as their nearest built-in
 * supertype (Duration as Double), structures only fit json.
 */
import {
  type CanonicalOpcuaType,
  canonicalType,
  elementType,
  type OpcuaScalarType,
  type OpcuaType,
} from "../../config/schema/opcua.ts";

export type Fit = "always" | "check" | "never";

/** Names of the built-in types by id, as variants and DataType nodes of namespace 0 use them. */
export const BUILT_IN_NAMES: Readonly<Record<number, string>> = {
  0: "Null",
  1: "Boolean",
  2: "SByte",
  3: "Byte",
  4: "Int16",
  5: "UInt16",
  6: "Int32",
  7: "UInt32",
  8: "Int64",
  9: "UInt64",
  10: "Float",
  11: "Double",
  12: "String",
  13: "DateTime",
  14: "Guid",
  15: "ByteString",
  16: "XmlElement",
  17: "NodeId",
  18: "ExpandedNodeId",
  19: "StatusCode",
  20: "QualifiedName",
  21: "LocalizedText",
  22: "Structure",
  23: "DataValue",
  24: "BaseDataType",
  25: "DiagnosticInfo",
  26: "Number",
  27: "Integer",
  28: "UInteger",
  29: "Enumeration",
};

export const ENUMERATION = 29;
/** Abstract DataTypes: the variable's values may be of any of several built-in types. */
export const ABSTRACT = new Set([24, 26, 27, 28]);

/** Integer built-ins: [low, high]. */
export const INT_RANGE: Readonly<Record<number, readonly [bigint, bigint]>> = {
  2: [-128n, 127n],
  3: [0n, 255n],
  4: [-32_768n, 32_767n],
  5: [0n, 65_535n],
  6: [-2_147_483_648n, 2_147_483_647n],
  7: [0n, 4_294_967_295n],
  8: [-(2n ** 63n), 2n ** 63n - 1n],
  9: [0n, 2n ** 64n - 1n],
};

/** The configured integer types as built-in ids. */
const INT_ID: Partial<Record<OpcuaScalarType, number>> = {
  int8: 2,
  uint8: 3,
  int16: 4,
  uint16: 5,
  int32: 6,
  uint32: 7,
  int64: 8,
  uint64: 9,
};

/** The one built-in type each non-numeric configured type takes. */
const EXACT: Partial<Record<OpcuaScalarType, number>> = {
  bool: 1,
  string: 12,
  datetime: 13,
  guid: 14,
  bytestring: 15,
  statuscode: 19,
  localizedtext: 21,
};

const FLOAT = 10;
const DOUBLE = 11;

/** The [low, high] range of a configured integer type; undefined for other types. */
export function intRangeOf(type: OpcuaScalarType): readonly [bigint, bigint] | undefined {
  const id = INT_ID[type];
  return id === undefined ? undefined : INT_RANGE[id];
}

/** How a value of built-in type `id` (1..25; an enumeration counts as Int32) fits `type`. */
export function fitOf(id: number, type: OpcuaScalarType): Fit {
  const exact = EXACT[type];
  if (exact !== undefined) return id === exact ? "always" : "never";
  const source = INT_RANGE[id];
  const target = intRangeOf(type);
  if (target !== undefined) {
    if (source !== undefined)
      return source[0] >= target[0] && source[1] <= target[1] ? "always" : "check";
    return id === FLOAT || id === DOUBLE ? "check" : "never";
  }
  // float32 or float64
  if (id === FLOAT) return "always";
  if (id === DOUBLE) return type === "float64" ? "always" : "check";
  if (source === undefined) return "never";
  // integers exactly representable in every case: 24 bits of mantissa (float32), 53 (float64)
  const bits = type === "float32" ? 24n : 53n;
  return source[0] >= -(2n ** bits) && source[1] <= 2n ** bits ? "always" : "check";
}

/** How an abstract DataType's values (BaseDataType, Number, Integer, UInteger) can fit `type`. */
function abstractFit(id: number, type: OpcuaScalarType): Fit {
  if (id === 24) return "check";
  const numeric = intRangeOf(type) !== undefined || type === "float32" || type === "float64";
  return numeric ? "check" : "never";
}

/** The server side of a tag as read at connect. */
export interface ServerType {
  /** For messages: "Double", "Duration (Double)", "MachineState (Enumeration)". */
  name: string;
  /** Built-in id the values take (an enumeration: 29; abstract: 24, 26, 27, 28). */
  base: number;
  /** The ValueRank attribute: -1 scalar, 1 array, 0 one or more dimensions, -2 any, -3 scalar or 1-D. */
  valueRank: number;
}

/** "Double", "Double[]", "Double[,]" by ValueRank. */
export function serverTypeName(server: ServerType): string {
  if (server.valueRank === 0 || server.valueRank === 1) return `${server.name}[]`;
  if (server.valueRank > 1) return `${server.name}[${",".repeat(server.valueRank - 1)}]`;
  return server.name;
}

/** The type a tag without one takes from its variable (arrays: T[], else json), gateway names. */
export function derivedType(
  server: ServerType,
  typeOf: (id: number) => CanonicalOpcuaType,
): CanonicalOpcuaType {
  const base = server.base === ENUMERATION ? 6 : server.base;
  const scalar = typeOf(base);
  if (scalar === "json" || ABSTRACT.has(base)) return "json";
  if (server.valueRank === -1) return scalar;
  if (server.valueRank === 1 || server.valueRank === 0) return `${scalar}[]` as CanonicalOpcuaType;
  return "json";
}

export interface ConnectMisfit {
  reason: string;
  reasonCode: "OPCUA_TYPE_MISMATCH" | "OPCUA_ARRAY_VALUE";
}

/**
 * The connect check of a configured type (either name: `double` is `float64`) against the
 * variable; the reason names the type as configured. `scalarOnly`: the tag has states, alarms
 * or a trigger, which need one scalar value.
 */
export function connectMisfit(
  server: ServerType,
  type: OpcuaType,
  scalarOnly: boolean,
): ConnectMisfit | undefined {
  const shown = serverTypeName(server);
  const array = elementType(type) !== undefined || server.valueRank >= 0;
  if (scalarOnly && array) {
    const what = server.valueRank >= 0 ? `server DataType ${shown}` : `configured type ${type}`;
    return {
      reason: `${what} is an array: states, alarms and triggers need a scalar value`,
      reasonCode: "OPCUA_ARRAY_VALUE",
    };
  }
  if (type === "json") return undefined;
  const mismatch = {
    reason: `server DataType ${shown} does not fit configured type ${type}`,
    reasonCode: "OPCUA_TYPE_MISMATCH" as const,
  };
  const element = elementType(type);
  const rank = server.valueRank;
  // a scalar type takes -1 (or maybe -2, -3: each value is checked); an array type 1 (or 0,
  // -2, -3); never a matrix
  if (element === undefined ? rank >= 0 : rank === -1 || rank > 1) return mismatch;
  const scalar = element ?? (canonicalType(type) as OpcuaScalarType);
  const base = server.base === ENUMERATION ? 6 : server.base;
  const fit = ABSTRACT.has(base) ? abstractFit(base, scalar) : fitOf(base, scalar);
  if (fit === "never" || (fit === "check" && !ABSTRACT.has(base))) return mismatch;
  return undefined;
}
