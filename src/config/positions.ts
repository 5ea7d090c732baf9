/**
 * Maps config paths back to YAML source positions, and source offsets back to paths.
 * Contract: `locate` never fails. It walks the path as deep as the document goes and
 * returns the deepest node found: the value at the path when it exists, the parent map when
 * the last key is missing (a missing required key), or, in "key" mode, the key node itself
 * (an unknown key). Positions are 1-based line and column from the document's LineCounter.
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type LineCounter,
  type Node,
  type Pair,
} from "yaml";
import type { PathSegment } from "./errors.ts";

export interface Position {
  line: number;
  col: number;
}

function keyText(pair: Pair): string | undefined {
  const key = pair.key;
  if (isScalar(key)) return String(key.value);
  if (key === null || key === undefined) return undefined;
  return String(key);
}

function childPair(node: unknown, segment: PathSegment): Pair | undefined {
  if (!isMap(node)) return undefined;
  return node.items.find((pair) => keyText(pair) === String(segment));
}

function child(node: unknown, segment: PathSegment): Node | undefined {
  if (isSeq(node)) {
    if (typeof segment !== "number") return undefined;
    const item = node.items[segment];
    return isNodeLike(item) ? item : undefined;
  }
  const pair = childPair(node, segment);
  return isNodeLike(pair?.value) ? pair.value : undefined;
}

function isNodeLike(value: unknown): value is Node {
  return isScalar(value) || isMap(value) || isSeq(value) || isAlias(value);
}

function startOf(node: Node | null | undefined): number | undefined {
  return node?.range?.[0];
}

/**
 * The source offset for a path. mode "key" points at the map key of the last segment (for an
 * unknown key); "value" at the value, or the nearest existing ancestor.
 */
export function offsetOf(
  doc: Document,
  path: readonly PathSegment[],
  mode: "key" | "value" = "value",
): number {
  let node: Node | null | undefined = doc.contents as Node | null;
  let offset = startOf(node) ?? 0;
  for (const [index, segment] of path.entries()) {
    const last = index === path.length - 1;
    if (last && mode === "key") {
      const pair = childPair(node, segment);
      const keyNode = pair?.key as Node | null | undefined;
      return startOf(keyNode) ?? offset;
    }
    const next = child(node, segment);
    const nextOffset = startOf(next);
    if (next === undefined || nextOffset === undefined) return offset;
    node = next;
    offset = nextOffset;
  }
  return offset;
}

export function locate(
  doc: Document,
  lineCounter: LineCounter,
  path: readonly PathSegment[],
  mode: "key" | "value" = "value",
): Position {
  return lineCounter.linePos(offsetOf(doc, path, mode));
}

/** The path of the innermost node whose source range holds `offset` (for YAML errors). */
export function pathAt(doc: Document, offset: number): PathSegment[] {
  const path: PathSegment[] = [];
  let node: unknown = doc.contents;
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find((p) => {
        const start = startOf(p.key as Node | null) ?? startOf(p.value as Node | null);
        const end = (p.value as Node | null)?.range?.[2] ?? (p.key as Node | null)?.range?.[2];
        return start !== undefined && end !== undefined && start <= offset && offset <= end;
      });
      const key = pair === undefined ? undefined : keyText(pair);
      if (pair === undefined || key === undefined) return path;
      path.push(key);
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => {
        const range = (item as Node | null)?.range;
        return range != null && range[0] <= offset && offset <= range[2];
      });
      if (index < 0) return path;
      path.push(index);
      node = node.items[index];
    } else {
      return path;
    }
  }
}
