/**
 * Commissioning: walks a server's address space and writes a ready-to-edit gateway YAML with
 * one device and one tag per variable, as it goes (memory bounded by the depth of the walk, the
 * visited set and one folder's children at a time; continuation points followed).
 *
 * Each tag: a unique name from its browse path, the namespace-URI node id (`nsu=...;s=...`,
 * stable when the server renumbers), the type from its DataType (arrays and structures: json),
 * its EngineeringUnits as `unit` and its EURange as `range` where the server has them.
 * Namespace 0 (the Server object) and properties are skipped. The output passes
 * `plc2mqtt validate` unchanged.
 */
import type { ClientSession, ReferenceDescription } from "node-opcua-client";
import type { OpcuaDeviceConfig } from "../../config/schema/opcua.ts";
import { errorMessage, GatewayError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logger.ts";
import { openConnection } from "./connection.ts";
import { loadOpcua, type Opcua, quietOpcua } from "./load.ts";
import { withNamespaceUri } from "./node-ids.ts";
import { browseAll, chunks, resolveTags } from "./resolve.ts";
import { gatewayTypeOfDataType } from "./values.ts";

export interface BrowseOptions {
  endpoint: string;
  /** Browse path or node id to start from (default the Objects folder). */
  root?: string;
  depth: number;
  /** Glob on the variable's path below the root (`TestStand/*`, `*Temp*`). */
  filter?: string;
  security: { mode: "None" | "Sign" | "SignAndEncrypt"; policy: string };
  auth: OpcuaDeviceConfig["auth"];
  /** Name of the environment variable holding the password, written as ${env:...}. */
  passwordEnv?: string;
  pkiDir: string;
  /** The gateway config whose PKI this is, named in the `pki trust`/`pki export` hints. */
  configPath?: string;
  /** data_dir written into the gateway block. */
  dataDir: string;
  deviceId: string;
  log: Logger;
  signal: AbortSignal;
  write(text: string): Promise<void>;
}

export interface BrowseSummary {
  variables: number;
  folders: number;
}

const HAS_PROPERTY = "ns=0;i=46";

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

const yamlString = (s: string) => JSON.stringify(s);

function tagName(path: readonly string[], used: Set<string>): string {
  let base = path
    .join(".")
    .replace(/[^A-Za-z0-9_.-]+/g, "_")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, 56);
  if (base === "") base = "tag";
  let name = base;
  for (let n = 2; used.has(name.toLowerCase()); n++) name = `${base}_${n}`;
  used.add(name.toLowerCase());
  return name;
}

interface Found {
  nodeId: string;
  path: string[];
}

async function describeVariables(
  session: ClientSession,
  opcua: Opcua,
  vars: readonly Found[],
  namespaces: readonly string[],
  used: Set<string>,
): Promise<string> {
  const attrs = await session.read(
    vars.flatMap((v) => [
      { nodeId: v.nodeId, attributeId: opcua.AttributeIds.DataType },
      { nodeId: v.nodeId, attributeId: opcua.AttributeIds.ValueRank },
    ]),
  );
  const props = await session.browse(
    vars.map((v) => ({
      nodeId: v.nodeId,
      referenceTypeId: HAS_PROPERTY,
      browseDirection: opcua.BrowseDirection.Forward,
      includeSubtypes: true,
      resultMask: 63,
    })),
  );
  const wanted: { i: number; what: "unit" | "range"; nodeId: string }[] = [];
  props.forEach((p, i) => {
    for (const r of p.references ?? []) {
      if (r.browseName.name === "EngineeringUnits")
        wanted.push({ i, what: "unit", nodeId: r.nodeId.toString() });
      if (r.browseName.name === "EURange")
        wanted.push({ i, what: "range", nodeId: r.nodeId.toString() });
    }
  });
  const values =
    wanted.length === 0
      ? []
      : await session.read(
          wanted.map((w) => ({ nodeId: w.nodeId, attributeId: opcua.AttributeIds.Value })),
        );
  const extra = vars.map(() => ({}) as { unit?: string; range?: { min: number; max: number } });
  wanted.forEach((w, k) => {
    const v = values[k]?.value.value as Record<string, unknown> | null | undefined;
    if (!v) return;
    if (w.what === "unit") {
      const text = (v.displayName as { text?: string } | undefined)?.text;
      if (text) extra[w.i]!.unit = text.slice(0, 32);
    } else if (typeof v.low === "number" && typeof v.high === "number" && v.high > v.low) {
      extra[w.i]!.range = { min: v.low, max: v.high };
    }
  });
  return vars
    .map((v, i) => {
      const dt = attrs[2 * i]?.value.value as { namespace: number; value: unknown } | null;
      const rank = attrs[2 * i + 1]?.value.value as number | null;
      const scalar = rank === -1 || rank === null || rank === undefined;
      const type = dt && scalar ? gatewayTypeOfDataType(dt.namespace, dt.value) : "json";
      const fields = [
        `name: ${tagName(v.path, used)}`,
        `node: ${yamlString(withNamespaceUri(v.nodeId, namespaces))}`,
        `type: ${type}`,
      ];
      const { unit, range } = extra[i]!;
      if (unit) fields.push(`unit: ${yamlString(unit)}`);
      if (range) fields.push(`range: { min: ${range.min}, max: ${range.max} }`);
      return `      - { ${fields.join(", ")} }\n`;
    })
    .join("");
}

function header(o: BrowseOptions): string {
  const auth =
    o.auth.type === "username"
      ? `    auth: { type: username, username: ${yamlString(o.auth.username)}, password: "\${env:${o.passwordEnv ?? "OPCUA_PASSWORD"}}" }\n`
      : "";
  return `# Written by plc2mqtt browse from ${o.endpoint} on ${new Date().toISOString()}.
# Edit freely: remove tags you do not need, add deadbands, states and triggers.
version: 1
gateway:
  id: edge-gateway
  data_dir: ${yamlString(o.dataDir)}
devices:
  - id: ${o.deviceId}
    protocol: opcua
    endpoint: ${yamlString(o.endpoint)}
    security: { mode: ${o.security.mode}, policy: ${o.security.mode === "None" ? "auto" : o.security.policy} }
${auth}    tags:
`;
}

export async function browseToYaml(o: BrowseOptions): Promise<BrowseSummary> {
  const opcua = await loadOpcua();
  quietOpcua(o.log);
  const connection = await openConnection(
    {
      opcua,
      endpoint: o.endpoint,
      security: o.security,
      auth: o.auth,
      pkiDir: o.pkiDir,
      ...(o.configPath === undefined ? {} : { configPath: o.configPath }),
      requestTimeout: 10_000,
      sessionTimeout: 60_000,
      log: o.log,
      device: o.deviceId,
    },
    o.signal,
  );
  const { session, namespaces } = connection;
  const summary: BrowseSummary = { variables: 0, folders: 0 };
  try {
    let root = "i=85";
    if (o.root !== undefined) {
      const isPath = o.root.startsWith("/");
      const [r] = await resolveTags(
        session,
        opcua,
        [isPath ? { name: "root", browsePath: o.root } : { name: "root", node: o.root }],
        namespaces,
        connection.limits.maxNodesPerRead,
        false,
      );
      if (!r || "reason" in r) {
        throw new GatewayError("OPCUA_BROWSE", `root ${o.root}: ${r ? r.reason : "not found"}`);
      }
      root = r.nodeId;
    }
    const filter = o.filter === undefined ? undefined : globToRegExp(o.filter);
    const used = new Set<string>();
    const visited = new Set<string>([root]);
    await o.write(header(o));
    const stack: { nodeId: string; path: string[]; depth: number }[] = [
      { nodeId: root, path: [], depth: 0 },
    ];
    while (stack.length > 0) {
      if (o.signal.aborted) throw new GatewayError("ABORTED", "browse aborted");
      const node = stack.pop()!;
      summary.folders += 1;
      const refs: ReferenceDescription[] = await browseAll(session, opcua, node.nodeId);
      const vars: Found[] = [];
      const next: typeof stack = [];
      for (const r of refs) {
        const id = r.nodeId.toString();
        if (r.nodeId.namespace === 0 || visited.has(id)) continue;
        if (r.referenceTypeId.toString() === HAS_PROPERTY) continue;
        visited.add(id);
        const path = [...node.path, r.browseName.name ?? id];
        const cls = r.nodeClass as number;
        if (cls === opcua.NodeClass.Variable) {
          if (!filter || filter.test(path.join("/"))) vars.push({ nodeId: id, path });
        }
        if (
          (cls === opcua.NodeClass.Object || cls === opcua.NodeClass.Variable) &&
          node.depth + 1 < o.depth
        ) {
          next.push({ nodeId: id, path, depth: node.depth + 1 });
        }
      }
      stack.push(...next.reverse());
      for (const part of chunks(
        vars,
        Math.min(connection.limits.maxNodesPerRead || 500, 500) >> 1 || 1,
      )) {
        const text = await describeVariables(session, opcua, part, namespaces, used);
        summary.variables += part.length;
        await o.write(text);
      }
    }
    if (summary.variables === 0) {
      throw new GatewayError(
        "OPCUA_BROWSE",
        `no variables under ${o.root ?? "Objects"}${o.filter ? ` matching ${o.filter}` : ""} within depth ${o.depth}: the YAML would have no tags`,
      );
    }
    return summary;
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw new GatewayError("OPCUA_BROWSE", `browsing ${o.endpoint} failed: ${errorMessage(err)}`, {
      cause: err,
    });
  } finally {
    await connection.close();
  }
}
