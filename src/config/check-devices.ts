/**
 * Semantic checks across the devices that passed the schema, even when other parts of the
 * file failed: device ids unique in the gateway, then each protocol's own checks, then the
 * engine rules (check-rules.ts) on the tags as the protocol describes them. Pure; paths are
 * absolute config paths (`devices[2].tags[0].address`).
 */
import { type CheckIssue, checkModbusDevice } from "./check-modbus.ts";
import { checkRules, type RuleTag, type ValueKind } from "./check-rules.ts";
import { impossibleTag, type ResolvedModbusTag, resolveModbusTag } from "./modbus-tags.ts";
import { REGISTER_WIDTH } from "./modbus-types.ts";
import { OPCUA_VALUE_KIND } from "./opcua-types.ts";
import type { ModbusDeviceConfig } from "./schema/modbus.ts";
import type { OpcuaDeviceConfig } from "./schema/opcua.ts";
import type { DeviceConfig } from "./schema/root.ts";

export interface CheckedDevice {
  /** Position in the `devices` list. */
  index: number;
  device: DeviceConfig;
  /** The keys the YAML gave (the rest are defaults). */
  given: ReadonlySet<string>;
  /** Where each of `device.tags` sits in the YAML's tag list (failing tags may be left out). */
  tagIndex: readonly number[];
  /** Every tag name the YAML gives, failing tags included (when known). */
  tagNames?: readonly string[];
}

export function checkDevices(devices: readonly CheckedDevice[]): CheckIssue[] {
  const issues: CheckIssue[] = [];
  const firstById = new Map<string, number>();
  for (const { index, device, given, tagIndex, tagNames } of devices) {
    const first = firstById.get(device.id);
    if (first !== undefined) {
      issues.push({
        path: ["devices", index, "id"],
        message: `device id "${device.id}" is already used by devices[${first}]`,
      });
    } else {
      firstById.set(device.id, index);
    }
    const yaml = { yamlNames: tagNames ?? [] };
    const own =
      device.protocol === "opcua"
        ? checkRules(device, opcuaRuleTags(device, tagIndex), yaml)
        : [
            ...checkModbusDevice(device, { given, tagIndex }),
            ...checkRules(device, modbusRuleTags(device, tagIndex), yaml),
          ];
    for (const issue of own) {
      issues.push({ path: ["devices", index, ...issue.path], message: issue.message });
    }
  }
  return issues;
}

/** Modbus tags as the rule checks see them; a tag that cannot be read keeps only its name. */
function modbusRuleTags(device: ModbusDeviceConfig, tagIndex: readonly number[]): RuleTag[] {
  return device.tags.map((config, position) => {
    const base: RuleTag = {
      index: tagIndex[position] ?? position,
      name: config.name,
      rules: config,
    };
    let tag: ResolvedModbusTag;
    try {
      tag = resolveModbusTag(device, config);
    } catch {
      return base;
    }
    const polled = { ...base, pollInterval: tag.pollInterval };
    return impossibleTag(tag) === undefined ? { ...polled, ...modbusValue(tag) } : polled;
  });
}

/** The value the engine gets: scale or offset turn an integer word into a number. */
function modbusValue(tag: ResolvedModbusTag): Pick<RuleTag, "kind" | "type" | "bits" | "signed"> {
  const { type } = tag;
  if (type === "bool" || type === "string") return { kind: type, type };
  if (type === "float32" || type === "float64") return { kind: "float", type };
  if (tag.scale === 1 && tag.offset === 0) {
    return {
      kind: "integer",
      type,
      bits: REGISTER_WIDTH[type] * 16,
      signed: type.startsWith("int"),
    };
  }
  const kind: ValueKind =
    Number.isInteger(tag.scale) && Number.isInteger(tag.offset) ? "integer" : "float";
  return { kind, type: `${type} with scale/offset` };
}

/** OPC UA tags as the rule checks see them: the kind comes from the configured type. */
function opcuaRuleTags(device: OpcuaDeviceConfig, tagIndex: readonly number[]): RuleTag[] {
  return device.tags.map((config, position) => {
    const tag: RuleTag = {
      index: tagIndex[position] ?? position,
      name: config.name,
      rules: config,
    };
    if (config.type !== undefined)
      Object.assign(tag, OPCUA_VALUE_KIND[config.type], { type: config.type });
    if ((config.mode ?? device.mode) === "poll")
      tag.pollInterval = config.poll_interval ?? device.poll_interval;
    return tag;
  });
}
