/**
 * Builds the test stand in a node-opcua address space from the model and pushes store values
 * into it. Layout: Objects/TestStand (ns=<i>;s=TestStand) holds the stand variables and the
 * folder Types (s=TestStand.Types) with one variable per built-in scalar type, Types.Variant
 * (DataType BaseDataType, ValueRank Any), Types.Enumeration and Types.Duration (DataTypes that
 * are subtypes); every variable has node id s=TestStand.<name> and its
 * last name segment as browse name. Measurements are
 * AnalogItems with EURange and EngineeringUnits. Variables are read-only and sampled on change
 * (MinimumSamplingInterval 0): setValueFromSource() notifies monitored items synchronously,
 * which node-opcua coalesces over the server's MinSupportedSampleRate (see types.ts).
 */
import type { Namespace, UAObject, UAVariable, Variant, VariantOptions } from "node-opcua";
import {
  type BuiltInType,
  type ScalarValue,
  type SimValue,
  STAND_FOLDER,
  TYPES_FOLDER,
  type TypedValue,
  type VariableSpec,
} from "./model.ts";
import type { Entry } from "./store.ts";

type Opcua = typeof import("node-opcua");

/** node-opcua's Int64/UInt64 form: [high, low] unsigned 32-bit words (two's complement). */
function words64(value: bigint): [number, number] {
  const u = BigInt.asUintN(64, value);
  return [Number(u >> 32n), Number(u & 0xffff_ffffn)];
}

export function statusCodeOf(opcua: Opcua, name: string) {
  const code = (opcua.StatusCodes as unknown as Record<string, unknown>)[name];
  if (typeof code !== "object" || code === null) {
    throw new RangeError(`OPC UA simulator: unknown status code ${JSON.stringify(name)}`);
  }
  return code as (typeof opcua.StatusCodes)["Good"];
}

/** One value of a built-in type in node-opcua's form. */
function opcuaValue(opcua: Opcua, dataType: BuiltInType, value: ScalarValue): unknown {
  if (typeof value === "bigint") return words64(value);
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (dataType === "LocalizedText") return new opcua.LocalizedText(value as object);
  if (dataType === "StatusCode") return statusCodeOf(opcua, value as string);
  return value;
}

export function toVariant(opcua: Opcua, spec: VariableSpec, value: SimValue): Variant {
  if (spec.dataType === "BaseDataType") {
    const typed = value as TypedValue;
    const array = Array.isArray(typed.value);
    const values = array ? (typed.value as ScalarValue[]) : [typed.value as ScalarValue];
    const converted = values.map((v) => opcuaValue(opcua, typed.dataType, v));
    return new opcua.Variant({
      dataType: opcua.DataType[typed.dataType],
      arrayType: array ? opcua.VariantArrayType.Array : opcua.VariantArrayType.Scalar,
      value: (array ? converted : converted[0]) as VariantOptions["value"],
    });
  }
  const dataType = opcua.DataType[spec.dataType];
  if (spec.array) {
    const array = Float64Array.from(value as number[]);
    return new opcua.Variant({ dataType, arrayType: opcua.VariantArrayType.Array, value: array });
  }
  return new opcua.Variant({
    dataType,
    arrayType: opcua.VariantArrayType.Scalar,
    value: opcuaValue(opcua, spec.dataType, value as ScalarValue) as VariantOptions["value"],
  });
}

export interface BuiltStand {
  variables: Map<string, UAVariable>;
}

export function buildStand(
  opcua: Opcua,
  namespace: Namespace,
  objectsFolder: UAObject,
  entries: Iterable<Entry>,
): BuiltStand {
  const stand = namespace.addFolder(objectsFolder, {
    browseName: STAND_FOLDER,
    nodeId: `s=${STAND_FOLDER}`,
  });
  const types = namespace.addFolder(stand, {
    browseName: TYPES_FOLDER,
    nodeId: `s=${STAND_FOLDER}.${TYPES_FOLDER}`,
  });
  const variables = new Map<string, UAVariable>();
  for (const entry of entries) {
    const { spec } = entry;
    const segments = spec.name.split(".");
    const common = {
      componentOf: segments.length > 1 ? types : stand,
      browseName: segments[segments.length - 1]!,
      nodeId: `s=${STAND_FOLDER}.${spec.name}`,
      description: spec.description,
      dataType: spec.subtype ?? spec.dataType,
      minimumSamplingInterval: 0,
    };
    const variable: UAVariable =
      spec.analog === undefined
        ? namespace.addVariable({
            ...common,
            valueRank: spec.dataType === "BaseDataType" ? -2 : spec.array ? 1 : -1,
            ...(spec.array ? { arrayDimensions: [0] } : {}),
            accessLevel: "CurrentRead",
            userAccessLevel: "CurrentRead",
          })
        : namespace.addAnalogDataItem({
            ...common,
            engineeringUnitsRange: { low: spec.analog.low, high: spec.analog.high },
            engineeringUnits: opcua.standardUnits[spec.analog.unit],
          });
    variables.set(spec.name, variable);
    push(opcua, variable, entry);
  }
  return { variables };
}

export function push(opcua: Opcua, variable: UAVariable, entry: Entry): void {
  variable.setValueFromSource(
    toVariant(opcua, entry.spec, entry.value),
    statusCodeOf(opcua, entry.status),
    entry.sourceTimestamp,
  );
}
