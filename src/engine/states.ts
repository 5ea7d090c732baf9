/**
 * Enumerated tags (machine states). Contract:
 * - The raw value's key is its text: integers as decimals ("0", "-1"), bools as "true" and
 *   "false" (a bool also matches "1" and "0" when true/false are not configured), 64-bit
 *   integers as their decimal text. An unmapped raw value is the state `unknown:<raw>`.
 * - state.changed { state, previous_state, raw, previous_duration_ms } is emitted on the first
 *   good value (previous_state and previous_duration_ms null) and whenever the state name
 *   changes; a state that flaps emits every change. Two raw values with the same name are one
 *   state. The event's time is the sample's (source time, else read time). A bad period does
 *   not end a state. Only good values move states: an uncertain value does not (engine.ts).
 * - previous_duration_ms (issue 11.5) is measured on ONE clock per tag, the clock its samples
 *   carry: the source clock (source timestamps: OPC UA) from the sample that entered the
 *   previous state to the sample that entered this one when both carry a source time, the
 *   read clock (the gateway's receive times: Modbus, or an OPC UA server that never sends
 *   source timestamps) when neither does. Where the clocks disagree (one of the two samples
 *   carries a source time and the other does not, a server that sometimes omits them, or the
 *   source time went backwards) the duration is measured between the two read times instead
 *   and the event says so with `duration_clock_mismatch: true`; previous_duration_ms is null
 *   (with the flag) when the read times went backwards too. Never a silent 0.
 */
import type { TagValue } from "../events/sample.ts";
import { EVENT_TYPES, type JsonValue } from "../events/types.ts";
import type { Draft } from "./types.ts";

/** The times of one sample: its source time when it has one, and its read time. */
export interface Stamp {
  sourceTime?: number;
  readTime: number;
}

export interface StateTrack {
  state: string;
  /** When the state was entered: the times of the sample that entered it. */
  since: Stamp;
}

function rawKeys(value: TagValue): string[] {
  if (typeof value === "boolean") return value ? ["true", "1"] : ["false", "0"];
  if (typeof value === "string" || typeof value === "number") return [String(value)];
  return [JSON.stringify(value)];
}

export function stateName(states: Record<string, string>, value: TagValue): string {
  const keys = rawKeys(value);
  for (const key of keys) if (Object.hasOwn(states, key)) return states[key]!;
  return `unknown:${keys[0]}`;
}

/** How long from `from` to `to` on the tag's clock, and whether the clocks disagreed. */
export function stateDuration(from: Stamp, to: Stamp): { ms: number | null; mismatch: boolean } {
  const sourced = from.sourceTime !== undefined && to.sourceTime !== undefined;
  if (sourced) {
    const ms = to.sourceTime! - from.sourceTime!;
    if (ms >= 0) return { ms, mismatch: false };
  } else if (from.sourceTime === undefined && to.sourceTime === undefined) {
    const ms = to.readTime - from.readTime;
    if (ms >= 0) return { ms, mismatch: false };
  }
  const ms = to.readTime - from.readTime;
  return { ms: ms >= 0 ? ms : null, mismatch: true };
}

/** A good value of a tag with states; returns the event when the state changed. */
export function stateOnGood(
  tag: string,
  states: Record<string, string>,
  previous: StateTrack | undefined,
  value: TagValue,
  stamp: Stamp,
): { track: StateTrack; draft?: Draft } {
  const state = stateName(states, value);
  if (previous !== undefined && previous.state === state) return { track: previous };
  const data: { [key: string]: JsonValue } = {
    state,
    previous_state: previous?.state ?? null,
    raw: value,
    previous_duration_ms: null,
  };
  if (previous !== undefined) {
    const duration = stateDuration(previous.since, stamp);
    data.previous_duration_ms = duration.ms;
    if (duration.mismatch) data.duration_clock_mismatch = true;
  }
  const draft: Draft = {
    type: EVENT_TYPES.stateChanged,
    subject: tag,
    time: stamp.sourceTime ?? stamp.readTime,
    data,
    topicClass: "state",
  };
  const since: Stamp =
    stamp.sourceTime === undefined
      ? { readTime: stamp.readTime }
      : { sourceTime: stamp.sourceTime, readTime: stamp.readTime };
  return { track: { state, since }, draft };
}
