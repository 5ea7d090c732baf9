/**
 * Node ids and browse paths of the config, resolved against the server at every connect.
 * Pure parsing here; the service calls are in resolve.ts.
 *
 * - `nsu=<uri>;<id>` becomes `ns=<index>;<id>` with the index the URI has in the server's
 *   NamespaceArray now, so a server that renumbered its namespaces keeps the tag map valid.
 *   An unknown URI is a reason for that tag to be bad, not an error for the device.
 * - A browse path is `/seg/seg...` from the Objects folder; a segment is `ns:Name` or `Name`
 *   (a name without namespace matches a child of that name in any namespace).
 */

export interface PathSegment {
  namespace?: number;
  name: string;
}

export type NodeRef = { kind: "node"; id: string } | { kind: "path"; segments: PathSegment[] };

/** Resolves `nsu=` against a NamespaceArray; other forms pass unchanged. */
export function resolveNodeId(
  id: string,
  namespaces: readonly string[],
): { id: string } | { reason: string; reasonCode: "OPCUA_UNRESOLVED" } {
  const m = /^nsu=([^;]+);(.+)$/.exec(id);
  if (!m) return { id };
  const index = namespaces.indexOf(m[1]!);
  if (index < 0)
    return {
      reason: `namespace ${m[1]} is not in the server's NamespaceArray`,
      reasonCode: "OPCUA_UNRESOLVED",
    };
  return { id: `ns=${index};${m[2]!}` };
}

export function parseBrowsePath(path: string): PathSegment[] {
  const parts = path.split("/").filter((p) => p !== "");
  return parts.map((part) => {
    const m = /^(\d+):(.+)$/.exec(part);
    return m ? { namespace: Number(m[1]), name: m[2]! } : { name: part };
  });
}

/** `nsu=<uri>;<rest>` for a `ns=<i>;<rest>` node id (ns 0 and unknown indexes keep their form). */
export function withNamespaceUri(id: string, namespaces: readonly string[]): string {
  const m = /^ns=(\d+);(.+)$/.exec(id);
  if (!m) return id;
  const index = Number(m[1]);
  const uri = namespaces[index];
  if (index === 0 || uri === undefined) return index === 0 ? m[2]! : id;
  return `nsu=${uri};${m[2]!}`;
}
