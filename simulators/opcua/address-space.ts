/**
 * Builds the test stand in a node-opcua address space from the model and pushes store values
 * into it. Layout: Objects/TestStand (ns=<i>;s=TestStand) holds the stand variables and the
 * folder Types (s=TestStand.Types) with one variable per built-in scalar type; every variable
 * has node id s=TestStand.<name> and its last name segment as browse name. Measurements are
 * AnalogItems with EURange and EngineeringUnits. Variables are read-only and sampled on change
 * (MinimumSamplingInterval 0): setValueFromSource() notifies monitored items directly.
 */
import type { Namespace, UAObject, UAVariable, Variant, VariantOptions } from "node-opcua";
import { type SimValue, STAND_FOLDER, TYPES_FOLDER, type VariableSpec } from "./model.ts";
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

export function toVariant(opcua: Opcua, spec: VariableSpec, value: SimValue): Variant {
  const dataType = opcua.DataType[spec.dataType];
  if (spec.array) {
    const array = Float64Array.from(value as number[]);
    return new opcua.Variant({ dataType, arrayType: opcua.VariantArrayType.Array, value: array });
  }
  let v: VariantOptions["value"] = value;
  if (typeof value === "bigint") v = words64(value);
  else if (value instanceof Uint8Array) v = Buffer.from(value);
  else if (spec.dataType === "LocalizedText") v = new opcua.LocalizedText(value as object);
  else if (spec.dataType === "StatusCode") v = statusCodeOf(opcua, value as string);
  return new opcua.Variant({ dataType, arrayType: opcua.VariantArrayType.Scalar, value: v });
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
      dataType: spec.dataType,
      minimumSamplingInterval: 0,
    };
    const variable: UAVariable =
      spec.analog === undefined
        ? namespace.addVariable({
            ...common,
            valueRank: spec.array ? 1 : -1,
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
