/**
 * The engine's view of a device from its validated config: durations are already in ms; the
 * value type comes from the configured type (STYLE habit 7), never from a value: bool, string,
 * float32/float64 -> float, integer types -> integer unless a fractional scale or offset
 * makes them float (as config/check-rules.ts judges them). A tag's stale_after defaults to
 * the device's; the site defaults to the gateway's.
 */
import { resolveModbusTag } from "../config/modbus-tags.ts";
import { OPCUA_VALUE_KIND } from "../config/opcua-types.ts";
import type { ModbusTagConfig } from "../config/schema/modbus.ts";
import type { OpcuaType } from "../config/schema/opcua.ts";
import type { DeviceConfig } from "../config/schema/root.ts";
import type { AssetContext } from "../events/types.ts";
import type { EngineDevice, EngineTag, ValueType } from "./types.ts";

export function engineDeviceFromConfig(device: DeviceConfig, gatewaySite?: string): EngineDevice {
  const asset: AssetContext = {};
  const site = device.site ?? gatewaySite;
  if (site !== undefined) asset.site = site;
  if (device.area !== undefined) asset.area = device.area;
  if (device.line !== undefined) asset.line = device.line;
  if (device.equipment !== undefined) asset.equipment = device.equipment;
  const tags = device.tags.map((config): EngineTag => {
    const valueType =
      device.protocol === "opcua"
        ? opcuaValueType(config.type as OpcuaType | undefined)
        : valueTypeOf(resolveModbusTag(device, config as ModbusTagConfig));
    const tag: EngineTag = { name: config.name, valueType };
    if (config.unit !== undefined) tag.unit = config.unit;
    if (config.range !== undefined) tag.range = config.range;
    if (config.deadband !== undefined) tag.deadband = config.deadband;
    if (config.heartbeat !== undefined) tag.heartbeatMs = config.heartbeat;
    if (config.min_interval !== undefined) tag.minIntervalMs = config.min_interval;
    const staleAfter = config.stale_after ?? device.stale_after;
    if (staleAfter !== undefined) tag.staleAfterMs = staleAfter;
    if (config.states !== undefined) tag.states = config.states;
    if (config.alarms !== undefined) tag.alarms = config.alarms;
    if (config.trigger !== undefined) tag.trigger = config.trigger;
    return tag;
  });
  const engineDevice: EngineDevice = { id: device.id, asset, context: device.context, tags };
  if (device.stale_after !== undefined) engineDevice.staleAfterMs = device.stale_after;
  return engineDevice;
}

function valueTypeOf(tag: { type: string; scale: number; offset: number }): ValueType {
  switch (tag.type) {
    case "bool":
      return "bool";
    case "string":
      return "string";
    case "float32":
    case "float64":
      return "float";
    default:
      return Number.isInteger(tag.scale) && Number.isInteger(tag.offset) ? "integer" : "float";
  }
}

/** OPC UA: the configured type; a tag without one is compared as JSON (any change). */
function opcuaValueType(type: OpcuaType | undefined): ValueType {
  return type === undefined ? "json" : OPCUA_VALUE_KIND[type].kind;
}
