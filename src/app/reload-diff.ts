/** What a reload changes: devices compared by id and by their whole validated config. */
import { isDeepStrictEqual } from "node:util";
import type { GatewayConfig } from "../config/schema/root.ts";

export interface ReloadReport {
  added: string[];
  removed: string[];
  changed: string[];
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
