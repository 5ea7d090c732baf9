/**
 * What each configured OPC UA type is as a value: the one table the rule checks, the engine and
 * the driver share (integers carry their width and sign for state keys and alarm bits). An
 * array type (`float64[]`) is a JSON array: kind json, `array` set. Every name the config may
 * write has its row: the gateway's names and their OPC UA aliases (`double` as `float64`).
 */
import {
  canonicalType,
  OPCUA_TYPES,
  type OpcuaScalarType,
  type OpcuaType,
} from "./schema/opcua.ts";

export type OpcuaValueKind = "integer" | "float" | "bool" | "string" | "json";

export interface OpcuaValueInfo {
  kind: OpcuaValueKind;
  bits?: number;
  signed?: boolean;
  /** A one-dimensional array type: never a state, an alarm word or a trigger. */
  array?: boolean;
}

const SCALAR_KIND: Record<OpcuaScalarType, OpcuaValueInfo> = {
  bool: { kind: "bool" },
  int8: { kind: "integer", bits: 8, signed: true },
  uint8: { kind: "integer", bits: 8, signed: false },
  int16: { kind: "integer", bits: 16, signed: true },
  uint16: { kind: "integer", bits: 16, signed: false },
  int32: { kind: "integer", bits: 32, signed: true },
  uint32: { kind: "integer", bits: 32, signed: false },
  int64: { kind: "integer", bits: 64, signed: true },
  uint64: { kind: "integer", bits: 64, signed: false },
  float32: { kind: "float" },
  float64: { kind: "float" },
  string: { kind: "string" },
  datetime: { kind: "string" },
  guid: { kind: "string" },
  localizedtext: { kind: "string" },
  statuscode: { kind: "string" },
  bytestring: { kind: "json" },
};

function infoOf(type: OpcuaType): OpcuaValueInfo {
  const canonical = canonicalType(type);
  if (canonical === "json") return { kind: "json" };
  if (canonical.endsWith("[]")) return { kind: "json", array: true };
  return SCALAR_KIND[canonical as OpcuaScalarType];
}

export const OPCUA_VALUE_KIND: Record<OpcuaType, OpcuaValueInfo> = Object.fromEntries(
  OPCUA_TYPES.map((t) => [t, infoOf(t)]),
) as Record<OpcuaType, OpcuaValueInfo>;
