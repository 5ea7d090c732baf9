/**
 * An OPC UA device's tags as the driver uses them, computed once from the config (no I/O):
 * how each is acquired (subscribe or poll), its sampling interval, queue size, poll interval,
 * whether its value must be a scalar (states, alarms, trigger), and the absolute deadband the
 * server may apply. A percent deadband is sent as the absolute
 * band it means for the engine (percent of the configured range); without a configured range
 * the engine's base is the last reported value, which no server filter can express, so none is
 * sent. The server filter therefore never suppresses a change the engine would report.
 */
import { OPCUA_VALUE_KIND } from "../../config/opcua-types.ts";
import type { OpcuaDeviceConfig, OpcuaType } from "../../config/schema/opcua.ts";

export interface OpcuaTag {
  name: string;
  node?: string;
  browsePath?: string;
  type?: OpcuaType;
  mode: "subscribe" | "poll";
  samplingInterval: number;
  queueSize: number;
  pollInterval: number;
  deadband?: number;
  /** states, alarms or a trigger: the value must be one scalar (issue 11.11). */
  scalarOnly: boolean;
}

export function opcuaTags(device: OpcuaDeviceConfig): OpcuaTag[] {
  return device.tags.map((t) => {
    const tag: OpcuaTag = {
      name: t.name,
      mode: t.mode ?? device.mode,
      samplingInterval: t.sampling_interval ?? device.sampling_interval,
      queueSize: t.queue_size ?? device.queue_size,
      pollInterval: t.poll_interval ?? device.poll_interval,
      scalarOnly: t.states !== undefined || t.alarms !== undefined || t.trigger !== undefined,
    };
    if (t.node !== undefined) tag.node = t.node;
    if (t.browse_path !== undefined) tag.browsePath = t.browse_path;
    if (t.type !== undefined) tag.type = t.type;
    const band = t.deadband;
    const kind = t.type === undefined ? undefined : OPCUA_VALUE_KIND[t.type].kind;
    const numeric = kind === undefined || kind === "integer" || kind === "float";
    if (
      band !== undefined &&
      numeric &&
      t.states === undefined &&
      t.trigger === undefined &&
      t.alarms === undefined
    ) {
      if ("absolute" in band) tag.deadband = band.absolute;
      else if (t.range !== undefined)
        tag.deadband = (band.percent * (t.range.max - t.range.min)) / 100;
    }
    if (tag.deadband === 0) delete tag.deadband;
    return tag;
  });
}
