/**
 * The built-in type behind a variable's DataType, for the connect check (type-fit.ts). A
 * DataType of namespace 0 up to Enumeration (i=29) is its own answer; any other (Duration,
 * UtcTime, a server's enumeration or structure) is followed up its HasSubtype chain (inverse
 * references) to the nearest one of those, and named after itself and that one: "Duration
 * (Double)", "MachineState (Enumeration)". A DataType whose chain cannot be followed counts as
 * BaseDataType (its values are checked one by one at run time) and is named by its node id.
 * One walk per DataType per connect (the cache).
 */
import type { ClientSession } from "node-opcua-client";
import type { Opcua } from "./load.ts";
import { BUILT_IN_NAMES } from "./type-fit.ts";

export interface DataTypeBase {
  name: string;
  /** Built-in id 1..29 (an enumeration 29; abstract ones 24, 26, 27, 28). */
  base: number;
}

const MAX_DEPTH = 16;
const BASE_DATA_TYPE = 24;

/** A DataType node id as node-opcua reads it. */
export interface DataTypeId {
  namespace: number;
  value: unknown;
  toString(): string;
}

function builtIn(id: DataTypeId): number | undefined {
  return id.namespace === 0 && typeof id.value === "number" && id.value >= 1 && id.value <= 29
    ? id.value
    : undefined;
}

async function walk(session: ClientSession, opcua: Opcua, id: DataTypeId): Promise<DataTypeBase> {
  const [name] = await session.read([
    { nodeId: id.toString(), attributeId: opcua.AttributeIds.BrowseName },
  ]);
  const own = (name?.value.value as { name?: string } | null)?.name ?? id.toString();
  let current: DataTypeId = id;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const result = await session.browse({
      nodeId: current.toString(),
      referenceTypeId: "HasSubtype",
      includeSubtypes: false,
      browseDirection: opcua.BrowseDirection.Inverse,
      resultMask: 63,
    });
    const parent = result.references?.[0]?.nodeId as DataTypeId | undefined;
    if (parent === undefined) break;
    const base = builtIn(parent);
    if (base !== undefined) return { name: `${own} (${BUILT_IN_NAMES[base]})`, base };
    current = parent;
  }
  return { name: id.toString(), base: BASE_DATA_TYPE };
}

export async function dataTypeBase(
  session: ClientSession,
  opcua: Opcua,
  id: DataTypeId,
  cache: Map<string, Promise<DataTypeBase>>,
): Promise<DataTypeBase> {
  const base = builtIn(id);
  if (base !== undefined) return { name: BUILT_IN_NAMES[base]!, base };
  const key = id.toString();
  let found = cache.get(key);
  if (found === undefined) {
    found = walk(session, opcua, id).catch(() => ({ name: key, base: BASE_DATA_TYPE }));
    cache.set(key, found);
  }
  return found;
}
