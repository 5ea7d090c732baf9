/**
 * What each configured OPC UA type is as a value: the one table the rule checks, the engine and
 * the driver share (integers carry their width and sign for state keys and alarm bits). An
 * array type (`double[]`) is a JSON array: kind json, `array` set.
 */
import {
  OPCUA_SCALAR_TYPES,
  type OpcuaArrayType,
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
  boolean: { kind: "bool" },
  sbyte: { kind: "integer", bits: 8, signed: true },
  byte: { kind: "integer", bits: 8, signed: false },
  int16: { kind: "integer", bits: 16, signed: true },
  uint16: { kind: "integer", bits: 16, signed: false },
  int32: { kind: "integer", bits: 32, signed: true },
  uint32: { kind: "integer", bits: 32, signed: false },
  int64: { kind: "integer", bits: 64, signed: true },
  uint64: { kind: "integer", bits: 64, signed: false },
  float: { kind: "float" },
  double: { kind: "float" },
  string: { kind: "string" },
  datetime: { kind: "string" },
  guid: { kind: "string" },
  localizedtext: { kind: "string" },
  statuscode: { kind: "string" },
  bytestring: { kind: "json" },
};

export const OPCUA_VALUE_KIND: Record<OpcuaType, OpcuaValueInfo> = {
  ...SCALAR_KIND,
  ...(Object.fromEntries(
    OPCUA_SCALAR_TYPES.map((t) => [`${t}[]`, { kind: "json", array: true }]),
  ) as Record<OpcuaArrayType, OpcuaValueInfo>),
  json: { kind: "json" },
};
