/**
 * Resolves every configured tag to a node id at connect: `nsu=` forms through the current
 * NamespaceArray, browse paths through TranslateBrowsePathsToNodeIds (segments with a
 * namespace) or by browsing (segments without), then reads every variable's DataType and
 * ValueRank. A configured type must fit them (type-fit.ts, issue 11.8): a mismatch makes that
 * tag bad with OPCUA_TYPE_MISMATCH, an array on a tag with states, alarms or a trigger with
 * OPCUA_ARRAY_VALUE (issue 11.11), each reason naming both types; a tag without a type takes
 * the variable's. A tag that cannot be resolved keeps the reason and is bad; the others work.
 * Every reason has a code (issue 13.4): the server's status name where the server said no
 * (BadNodeIdUnknown, BadNoMatch), else a catalogue code (OPCUA_UNRESOLVED, and
 * OPCUA_NOT_A_VARIABLE for an Object or any other node that is not a Variable: its DataType
 * read answers BadAttributeIdInvalid, which says nothing to a user, so the NodeClass is read).
 * Requests are split to fit the server's operation limits.
 */
import type { BrowseDescriptionLike, ClientSession, ReferenceDescription } from "node-opcua-client";
import type { OpcuaType } from "../../config/schema/opcua.ts";
import { type DataTypeBase, type DataTypeId, dataTypeBase } from "./data-types.ts";
import type { Opcua } from "./load.ts";
import { type PathSegment, parseBrowsePath, resolveNodeId } from "./node-ids.ts";
import { connectMisfit, derivedType, type ServerType, serverTypeName } from "./type-fit.ts";
import { gatewayTypeOfDataType } from "./values.ts";

export interface TagTarget {
  name: string;
  node?: string;
  browsePath?: string;
  type?: OpcuaType;
  /** The tag has states, alarms or a trigger: its value must be one scalar. */
  scalarOnly?: boolean;
}

/** Why a tag cannot be read: its reason, with a code. */
export interface Unresolved {
  reason: string;
  /** A catalogue code or an OPC UA status name. */
  reasonCode: string;
  /** With a type misfit: the server's DataType ("Double[]") and the configured type. */
  serverType?: string;
  configuredType?: string;
}

export type Resolved = { nodeId: string; type: OpcuaType } | Unresolved;

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const n = size > 0 ? size : 1000;
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

/** Every reference of a node (forward, hierarchical), following continuation points. */
export async function browseAll(
  session: ClientSession,
  opcua: Opcua,
  nodeId: string,
): Promise<ReferenceDescription[]> {
  const description: BrowseDescriptionLike = {
    nodeId,
    referenceTypeId: "HierarchicalReferences",
    includeSubtypes: true,
    browseDirection: opcua.BrowseDirection.Forward,
    resultMask: 63,
  };
  let result = await session.browse(description);
  const refs = [...(result.references ?? [])];
  while (result.continuationPoint && result.continuationPoint.length > 0) {
    result = await session.browseNext(result.continuationPoint, false);
    refs.push(...(result.references ?? []));
  }
  if (!result.statusCode.isGood() && refs.length === 0) {
    throw new Error(`browse ${nodeId}: ${result.statusCode.name}`);
  }
  return refs;
}

async function walk(
  session: ClientSession,
  opcua: Opcua,
  segments: readonly PathSegment[],
  cache: Map<string, Promise<ReferenceDescription[]>>,
): Promise<string | { reason: string; reasonCode: string }> {
  let current = "i=85"; // Objects
  for (const seg of segments) {
    let children = cache.get(current);
    if (!children) {
      children = browseAll(session, opcua, current);
      cache.set(current, children);
    }
    const match = (await children).find(
      (r) =>
        r.browseName.name === seg.name &&
        (seg.namespace === undefined || r.browseName.namespaceIndex === seg.namespace),
    );
    if (!match)
      return {
        reason: `browse path segment ${seg.name} not found under ${current}`,
        reasonCode: "OPCUA_UNRESOLVED",
      };
    current = match.nodeId.toString();
  }
  return current;
}

async function resolvePaths(
  session: ClientSession,
  opcua: Opcua,
  paths: { index: number; path: string }[],
  out: (Resolved | { nodeId: string })[],
  limit: number,
): Promise<void> {
  const prefixed = paths.filter((p) =>
    parseBrowsePath(p.path).every((s) => s.namespace !== undefined),
  );
  for (const part of chunks(prefixed, limit)) {
    const results = await session.translateBrowsePath(
      part.map((p) => opcua.makeBrowsePath("i=85", p.path)),
    );
    part.forEach((p, i) => {
      const r = results[i];
      const target = r?.targets?.[0]?.targetId;
      const status = r?.statusCode.isGood() ? "BadNoMatch" : r?.statusCode.name;
      out[p.index] =
        r?.statusCode.isGood() && target
          ? { nodeId: target.toString() }
          : {
              reason: `browse path ${p.path}: ${status ?? "no result"}`,
              reasonCode: status ?? "OPCUA_UNRESOLVED",
            };
    });
  }
  const cache = new Map<string, Promise<ReferenceDescription[]>>();
  for (const p of paths.filter((x) => !prefixed.includes(x))) {
    try {
      const r = await walk(session, opcua, parseBrowsePath(p.path), cache);
      out[p.index] = typeof r === "string" ? { nodeId: r } : r;
    } catch (err) {
      out[p.index] = {
        reason: `browse path ${p.path}: ${(err as Error).message}`,
        reasonCode: "OPCUA_UNRESOLVED",
      };
    }
  }
}

export async function resolveTags(
  session: ClientSession,
  opcua: Opcua,
  tags: readonly TagTarget[],
  namespaces: readonly string[],
  maxNodesPerRead: number,
  /** false: only node ids (for objects and folders, which have no DataType). */
  readTypes = true,
): Promise<Resolved[]> {
  const ids: (Resolved | { nodeId: string })[] = new Array(tags.length);
  const paths: { index: number; path: string }[] = [];
  tags.forEach((tag, index) => {
    if (tag.node !== undefined) {
      const r = resolveNodeId(tag.node, namespaces);
      ids[index] = "id" in r ? { nodeId: r.id } : r;
    } else paths.push({ index, path: tag.browsePath ?? "/" });
  });
  if (paths.length > 0) await resolvePaths(session, opcua, paths, ids, maxNodesPerRead);
  if (!readTypes) return ids.map((r) => ("reason" in r ? r : { nodeId: r.nodeId, type: "json" }));

  // DataType and ValueRank (and existence) of every resolved node in one pass of reads.
  const toRead = ids
    .map((r, index) => ({ r, index }))
    .filter((x): x is { r: { nodeId: string }; index: number } => "nodeId" in x.r);
  const attributes = toRead.flatMap((x) => [
    { nodeId: x.r.nodeId, attributeId: opcua.AttributeIds.DataType },
    { nodeId: x.r.nodeId, attributeId: opcua.AttributeIds.ValueRank },
  ]);
  const values = [];
  for (const part of chunks(attributes, maxNodesPerRead))
    values.push(...(await session.read(part)));
  const bases = new Map<string, Promise<DataTypeBase>>();
  const notVariables: { index: number; nodeId: string }[] = [];
  for (const [k, x] of toRead.entries()) {
    const dv = values[2 * k];
    const rank = values[2 * k + 1];
    if (!dv?.statusCode.isGood()) {
      const status = dv?.statusCode.name;
      if (status === "BadAttributeIdInvalid")
        notVariables.push({ index: x.index, nodeId: x.r.nodeId });
      ids[x.index] = unreadable(x.r.nodeId, status);
      continue;
    }
    const dataType = dv.value.value as DataTypeId | null;
    const { name, base } = dataType
      ? await dataTypeBase(session, opcua, dataType, bases)
      : { name: "BaseDataType", base: 24 };
    const valueRank = rank?.statusCode.isGood() ? Number(rank.value.value) : -2;
    ids[x.index] = typed(x.r.nodeId, tags[x.index]!, { name, base, valueRank });
  }
  await nameNodeClasses(session, opcua, notVariables, ids, maxNodesPerRead);
  return ids as Resolved[];
}

/** Why a node's DataType could not be read, with the server's status as the code. */
function unreadable(nodeId: string, status: string | undefined): Resolved {
  if (status === undefined)
    return { reason: `node ${nodeId}: no result`, reasonCode: "OPCUA_UNRESOLVED" };
  if (status === "BadNodeIdUnknown" && /^ns=[1-9]\d*;/.test(nodeId))
    return {
      reason: `node ${nodeId}: BadNodeIdUnknown: the server has no such node; a fixed namespace index (ns=) breaks when the server renumbers its namespaces, nsu=<namespace URI> does not`,
      reasonCode: status,
    };
  return { reason: `node ${nodeId}: ${status}`, reasonCode: status };
}

/**
 * Nodes whose DataType read answered BadAttributeIdInvalid: read their NodeClass, and say what
 * they are (an Object, a Method...) instead of the status. A failed read keeps the status.
 */
async function nameNodeClasses(
  session: ClientSession,
  opcua: Opcua,
  nodes: readonly { index: number; nodeId: string }[],
  ids: (Resolved | { nodeId: string })[],
  maxNodesPerRead: number,
): Promise<void> {
  for (const part of chunks(nodes, maxNodesPerRead)) {
    const classes = await session.read(
      part.map((n) => ({ nodeId: n.nodeId, attributeId: opcua.AttributeIds.NodeClass })),
    );
    part.forEach((n, i) => {
      const dv = classes[i];
      if (!dv?.statusCode.isGood()) return;
      const nodeClass = opcua.NodeClass[Number(dv.value.value)] ?? `NodeClass ${dv.value.value}`;
      if (nodeClass === "Variable") return;
      ids[n.index] = {
        reason: `node ${n.nodeId} is ${/^[AEIOU]/.test(nodeClass) ? "an" : "a"} ${nodeClass}, not a Variable: a tag must name a Variable`,
        reasonCode: "OPCUA_NOT_A_VARIABLE",
      };
    });
  }
}

/** The tag's type checked against its variable, or the reason it does not fit. */
function typed(nodeId: string, tag: TagTarget, server: ServerType): Resolved {
  const type = tag.type ?? derivedType(server, (id) => gatewayTypeOfDataType(0, id));
  const misfit = connectMisfit(server, type, tag.scalarOnly === true);
  if (misfit === undefined) return { nodeId, type };
  return { ...misfit, serverType: serverTypeName(server), configuredType: type };
}
