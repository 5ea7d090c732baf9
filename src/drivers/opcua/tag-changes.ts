/**
 * What a reload changes for a running OPC UA driver (issue 13.3), pure: whether the connection
 * itself must be rebuilt, and which tags were added, changed or removed.
 *
 * - The connection settings are the endpoint, security, identity (auth), the session's
 *   request and session timeouts and the reconnect backoff: a change of any of them needs a new
 *   session (updateTags resolves false). The PKI folder is the gateway's data_dir, which a
 *   reload does not change. Everything else of the device (mode, publishing and sampling
 *   intervals, queue sizes, poll intervals, the tags, and the engine's rules and asset
 *   context) is applied on the live session and subscription.
 * - A tag is changed when anything the driver uses of it differs (node, browse path, type,
 *   acquisition, sampling interval, queue size, poll interval, server deadband, scalar-only);
 *   a changed tag is resolved again and its monitored item replaced. A tag that differs only in
 *   what the engine uses (states, unit, heartbeat...) is unchanged for the driver.
 */
import { isDeepStrictEqual } from "node:util";
import type { OpcuaDeviceConfig } from "../../config/schema/opcua.ts";
import type { OpcuaTag } from "./tags.ts";

const CONNECTION_KEYS = [
  "endpoint",
  "security",
  "auth",
  "request_timeout",
  "session_timeout",
  "reconnect_min",
  "reconnect_max",
] as const satisfies readonly (keyof OpcuaDeviceConfig)[];

/** Whether going from `before` to `after` needs a new connection (and a new driver). */
export function connectionChanged(before: OpcuaDeviceConfig, after: OpcuaDeviceConfig): boolean {
  return CONNECTION_KEYS.some((key) => !isDeepStrictEqual(before[key], after[key]));
}

export interface TagChanges {
  /** Tags only in the new map. */
  added: OpcuaTag[];
  /** Tags in both maps that differ for the driver (the new form). */
  changed: OpcuaTag[];
  /** Names of tags only in the old map. */
  removed: string[];
}

export function tagChanges(before: readonly OpcuaTag[], after: readonly OpcuaTag[]): TagChanges {
  const old = new Map(before.map((t) => [t.name, t]));
  const names = new Set(after.map((t) => t.name));
  const changes: TagChanges = { added: [], changed: [], removed: [] };
  for (const tag of after) {
    const was = old.get(tag.name);
    if (was === undefined) changes.added.push(tag);
    else if (!isDeepStrictEqual(was, tag)) changes.changed.push(tag);
  }
  for (const tag of before) if (!names.has(tag.name)) changes.removed.push(tag.name);
  return changes;
}
