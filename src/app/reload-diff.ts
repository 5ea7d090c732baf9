/**
 * What a reload changes: devices compared by id and by their whole validated config; for a
 * device whose tag map changes on its live connection (issue 13.3), which of its tags read or
 * mean something else now and so start afresh in the engine.
 */
import { isDeepStrictEqual } from "node:util";
import { resolveModbusTag } from "../config/modbus-tags.ts";
import type { ModbusTagConfig } from "../config/schema/modbus.ts";
import type { DeviceConfig, GatewayConfig } from "../config/schema/root.ts";

export interface ReloadReport {
  added: string[];
  removed: string[];
  /** Every device whose config changed, whether applied live or by a new connection. */
  changed: string[];
  /** The changed devices whose driver applied the change on the live connection. */
  updatedLive: string[];
  unchanged: string[];
  /** Top-level sections that differ: applied only by a restart. */
  needsRestart: string[];
}

export function diffConfigs(current: GatewayConfig, next: GatewayConfig): ReloadReport {
  const before = new Map(current.devices.map((d) => [d.id, d]));
  const after = new Map(next.devices.map((d) => [d.id, d]));
  const report: ReloadReport = {
    added: [],
    removed: [],
    changed: [],
    updatedLive: [],
    unchanged: [],
    needsRestart: [],
  };
  for (const [id, device] of after) {
    const old = before.get(id);
    if (old === undefined) report.added.push(id);
    else if (isDeepStrictEqual(old, device)) report.unchanged.push(id);
    else report.changed.push(id);
  }
  for (const id of before.keys()) if (!after.has(id)) report.removed.push(id);
  for (const key of ["gateway", "mqtt", "journal", "http"] as const) {
    if (!isDeepStrictEqual(current[key], next[key])) report.needsRestart.push(key);
  }
  return report;
}

/** Tag settings that change how often or how a value is fetched, never what it is. */
const ACQUISITION_ONLY = new Set([
  "poll_interval",
  "sampling_interval",
  "queue_size",
  "mode",
  "description",
]);

/**
 * The tags in both configs of a device whose value is not the same quantity any more, or not
 * decoded the same way: their own settings changed (address, node, type, scale, rules...), or
 * the device's defaults they follow did (Modbus unit id, address base, byte order). A change
 * of acquisition alone (poll or sampling interval, queue size, mode) keeps a tag. The engine
 * also restarts any tag whose rules differ (engine.ts).
 */
export function tagsToRestart(before: DeviceConfig, after: DeviceConfig): Set<string> {
  const old = new Map<string, object>(before.tags.map((t) => [t.name, t]));
  const restart = new Set<string>();
  for (const tag of after.tags) {
    const was = old.get(tag.name);
    if (was === undefined) continue; // new: it starts afresh anyway
    if (!isDeepStrictEqual(meaning(before, was), meaning(after, tag))) restart.add(tag.name);
  }
  return restart;
}

function meaning(device: DeviceConfig, tag: object): unknown {
  const own = Object.fromEntries(Object.entries(tag).filter(([k]) => !ACQUISITION_ONLY.has(k)));
  if (device.protocol === "opcua") return own;
  const { pollInterval: _, ...resolved } = resolveModbusTag(device, tag as ModbusTagConfig);
  return { own, resolved };
}
