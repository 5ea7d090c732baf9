/**
 * Resolves every configured tag to a node id at connect: `nsu=` forms through the current
 * NamespaceArray, browse paths through TranslateBrowsePathsToNodeIds (segments with a
 * namespace) or by browsing (segments without), and reads the DataType of tags without a
 * configured type. A tag that cannot be resolved keeps the reason and is bad; the others work.
 * Requests are split to fit the server's operation limits.
 */
import type { BrowseDescriptionLike, ClientSession, ReferenceDescription } from "node-opcua";
import type { OpcuaType } from "../../config/schema/opcua.ts";
import type { Opcua } from "./load.ts";
import { type PathSegment, parseBrowsePath, resolveNodeId } from "./node-ids.ts";
import { typeOfDataType } from "./values.ts";

export interface TagTarget {
  name: string;
  node?: string;
  browsePath?: string;
  type?: OpcuaType;
}

export type Resolved = { nodeId: string; type: OpcuaType } | { reason: string };

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
): Promise<string | { reason: string }> {
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
    if (!match) return { reason: `browse path segment ${seg.name} not found under ${current}` };
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
      out[p.index] =
        r?.statusCode.isGood() && target
          ? { nodeId: target.toString() }
          : { reason: `browse path ${p.path}: ${r?.statusCode.name ?? "no result"}` };
    });
  }
  const cache = new Map<string, Promise<ReferenceDescription[]>>();
  for (const p of paths.filter((x) => !prefixed.includes(x))) {
    try {
      const r = await walk(session, opcua, parseBrowsePath(p.path), cache);
      out[p.index] = typeof r === "string" ? { nodeId: r } : r;
    } catch (err) {
      out[p.index] = { reason: `browse path ${p.path}: ${(err as Error).message}` };
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

  // DataType (and existence) of every resolved node in one pass of reads.
  const toRead = ids
    .map((r, index) => ({ r, index }))
    .filter((x): x is { r: { nodeId: string }; index: number } => "nodeId" in x.r);
  for (const part of chunks(toRead, maxNodesPerRead)) {
    const values = await session.read(
      part.map((x) => ({ nodeId: x.r.nodeId, attributeId: opcua.AttributeIds.DataType })),
    );
    part.forEach((x, i) => {
      const dv = values[i];
      const tag = tags[x.index]!;
      if (!dv?.statusCode.isGood()) {
        ids[x.index] = {
          reason: `node ${x.r.nodeId}: ${dv?.statusCode.name ?? "no result"}`,
        };
        return;
      }
      const dataType = dv.value.value as { namespace: number; value: unknown } | null;
      const type =
        tag.type ?? (dataType ? typeOfDataType(dataType.namespace, dataType.value) : "json");
      ids[x.index] = { nodeId: x.r.nodeId, type };
    });
  }
  return ids as Resolved[];
}
