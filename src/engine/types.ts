/**
 * The engine's view of devices and tags: the rule fields of the config, resolved (durations in
 * milliseconds, a value type from the configured type, the device's stale_after folded into
 * each tag by from-config.ts). Tests may write these directly.
 *
 * A tag follows the value rules it has: `states` (state.changed), `alarms` (alarm.changed per
 * bit), `trigger` (a user-named event); a tag with none of them is telemetry (deadband,
 * heartbeat, min_interval). Quality and staleness apply to every tag.
 */
import type { AssetContext, JsonValue, TopicClass } from "../events/types.ts";

export type ValueType = "bool" | "integer" | "float" | "string" | "json";

export type Deadband = { absolute: number } | { percent: number };

export interface Range {
  min: number;
  max: number;
}

export interface TriggerRule {
  on: "rising" | "falling" | "change" | "value";
  /** For on: value, the value that fires the trigger. */
  value?: number | string | boolean;
  /** The user-named event type, e.g. batch.completed. */
  event: string;
  /** Tags of the same device whose values travel in the event. */
  snapshot: readonly string[];
}

export interface EngineTag {
  name: string;
  valueType: ValueType;
  unit?: string;
  range?: Range;
  deadband?: Deadband;
  heartbeatMs?: number;
  minIntervalMs?: number;
  /** Becomes stale when not read successfully for this long (default: the device's). */
  staleAfterMs?: number;
  /** Raw value ("0", "1", "true") -> state name. */
  states?: Record<string, string>;
  /** Bit number ("0".."63") -> alarm name. */
  alarms?: Record<string, string>;
  trigger?: TriggerRule;
}

export interface EngineDevice {
  id: string;
  asset: AssetContext;
  /** Tags whose latest values travel in every event of the device. */
  context: readonly string[];
  /** Default staleAfterMs of the device's tags. */
  staleAfterMs?: number;
  tags: readonly EngineTag[];
}

/** An event as a rule produces it; the engine adds device, asset and context. */
export interface Draft {
  type: string;
  subject: string;
  time: number;
  data: { [key: string]: JsonValue };
  topicClass: TopicClass;
}
