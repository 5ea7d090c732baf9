/**
 * Semantic checks of one Modbus device that passed the schema: things a per-field schema
 * cannot see. Contract: pure; returns every issue, each with the config path of the node at
 * fault, relative to the device (the caller prefixes `devices[i]`):
 * - a tag name used twice (at the second tag's `name`);
 * - a tag that cannot be read as configured (`impossibleTag`), at its `type`, `length` or
 *   `address`;
 * - a register value wider than `max_registers_per_request` (at `type` or `length`);
 * - two tags on the same unit id and table sharing a register, coil or input, or the same
 *   register bit twice, at the later tag's `address` (a bit tag inside a word tag's registers
 *   is fine: that is how packed status words are read);
 * - `reconnect_min` longer than `reconnect_max`.
 */

import type { PathSegment } from "./errors.ts";
import { formatModbusAddress, isRegisterTable } from "./modbus-address.ts";
import { impossibleTag, type ResolvedModbusTag, resolveModbusTag } from "./modbus-tags.ts";
import type { ModbusDeviceConfig, ModbusTagConfig } from "./schema/modbus.ts";
import { formatDuration } from "./units.ts";

export interface CheckIssue {
  path: PathSegment[];
  message: string;
}

interface Placed {
  index: number;
  tag: ResolvedModbusTag;
}

/**
 * `given`: the keys the YAML set (the rest are defaults); `tagIndex`: where each of
 * `device.tags` sits in the YAML's list, when failing tags were left out.
 */
export function checkModbusDevice(
  device: ModbusDeviceConfig,
  yaml: { given: ReadonlySet<string>; tagIndex?: readonly number[] },
): CheckIssue[] {
  const { given } = yaml;
  const issues: CheckIssue[] = [];
  const firstByName = new Map<string, number>();
  const placed: Placed[] = [];
  for (const [position, config] of device.tags.entries()) {
    const index = yaml.tagIndex?.[position] ?? position;
    const at = (key: string): PathSegment[] => ["tags", index, key];
    const first = firstByName.get(config.name);
    if (first !== undefined) {
      issues.push({
        path: at("name"),
        message: `tag name "${config.name}" is already used by tags[${first}]`,
      });
    } else {
      firstByName.set(config.name, index);
    }
    let tag: ResolvedModbusTag;
    try {
      tag = resolveModbusTag(device, config);
    } catch (err) {
      issues.push({ path: at("address"), message: (err as Error).message });
      continue;
    }
    const impossible = impossibleTag(tag);
    if (impossible !== undefined) {
      issues.push({ path: at(impossibleKey(config, impossible)), message: impossible });
      continue;
    }
    const tooWide = tooWideForRequest(device, tag);
    if (tooWide !== undefined) {
      issues.push({ path: at(config.type === "string" ? "length" : "type"), message: tooWide });
    }
    placed.push({ index, tag });
  }
  issues.push(...overlaps(device, placed));
  if (device.reconnect_min > device.reconnect_max) {
    const key =
      given.has("reconnect_min") || !given.has("reconnect_max") ? "reconnect_min" : "reconnect_max";
    issues.push({
      path: [key],
      message: `reconnect_min ${formatDuration(device.reconnect_min)} is longer than reconnect_max ${formatDuration(device.reconnect_max)}`,
    });
  }
  return issues;
}

/** The key an impossibleTag() reason is about. */
function impossibleKey(config: ModbusTagConfig, reason: string): string {
  if (/\blength\b/.test(reason)) return "length";
  if (/past the last Modbus address/.test(reason)) return "address";
  return config.type === undefined ? "address" : "type";
}

function tooWideForRequest(device: ModbusDeviceConfig, tag: ResolvedModbusTag): string | undefined {
  if (!isRegisterTable(tag.address.table) || tag.address.bit !== undefined) return undefined;
  if (tag.span <= device.max_registers_per_request) return undefined;
  return `a ${tag.type} spans ${tag.span} registers, more than max_registers_per_request ${device.max_registers_per_request}`;
}

/** Sweeps each (unit id, table) group in address order; reports at the later tag in the file. */
function overlaps(device: ModbusDeviceConfig, placed: readonly Placed[]): CheckIssue[] {
  const issues: CheckIssue[] = [];
  const groups = new Map<string, Placed[]>();
  const bits = new Map<string, Placed>();
  for (const entry of placed) {
    const { unitId, address } = entry.tag;
    const group = `${unitId}/${address.table}`;
    if (address.bit !== undefined) {
      const key = `${group}/${address.offset}.${address.bit}`;
      const other = bits.get(key);
      if (other === undefined) bits.set(key, entry);
      else issues.push(overlapIssue(device, other, entry));
      continue;
    }
    const list = groups.get(group) ?? [];
    list.push(entry);
    groups.set(group, list);
  }
  for (const list of groups.values()) {
    list.sort((a, b) => a.tag.address.offset - b.tag.address.offset || a.index - b.index);
    let widest: Placed | undefined;
    for (const entry of list) {
      if (widest !== undefined && entry.tag.address.offset < end(widest)) {
        issues.push(overlapIssue(device, widest, entry));
      }
      if (widest === undefined || end(entry) > end(widest)) widest = entry;
    }
  }
  return issues;
}

function end(entry: Placed): number {
  return entry.tag.address.offset + entry.tag.span;
}

function overlapIssue(device: ModbusDeviceConfig, a: Placed, b: Placed): CheckIssue {
  const [first, second] = a.index < b.index ? [a, b] : [b, a];
  const where = describe(device, first.tag);
  return {
    path: ["tags", second.index, "address"],
    message: `${describe(device, second.tag)} overlaps tag "${first.tag.name}" (${where}) on unit ${second.tag.unitId}`,
  };
}

function describe(device: ModbusDeviceConfig, tag: ResolvedModbusTag): string {
  const start = formatModbusAddress(tag.address, device.address_base);
  if (tag.span <= 1 || tag.address.bit !== undefined) return start;
  const last = formatModbusAddress(
    { table: tag.address.table, offset: tag.address.offset + tag.span - 1 },
    device.address_base,
  );
  return `${start}..${last}`;
}
