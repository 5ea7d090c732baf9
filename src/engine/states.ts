/**
 * Enumerated tags (machine states). Contract:
 * - The raw value's key is its text: integers as decimals ("0", "-1"), bools as "true" and
 *   "false" (a bool also matches "1" and "0" when true/false are not configured), 64-bit
 *   integers as their decimal text. An unmapped raw value is the state `unknown:<raw>`.
 * - state.changed { state, previous_state, raw, previous_duration_ms } is emitted on the first
 *   good value (previous_state and previous_duration_ms null) and whenever the state name
 *   changes; a state that flaps emits every change. Two raw values with the same name are one
 *   state. previous_duration_ms = this sample's time - the time the previous state was
 *   entered (sample times; never negative). A bad period does not end a state.
 */
import type { TagValue } from "../events/sample.ts";
import { EVENT_TYPES } from "../events/types.ts";
import type { Draft } from "./types.ts";

export interface StateTrack {
  state: string;
  since: number;
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

/** A good value of a tag with states; returns the event when the state changed. */
export function stateOnGood(
  tag: string,
  states: Record<string, string>,
  previous: StateTrack | undefined,
  value: TagValue,
  time: number,
): { track: StateTrack; draft?: Draft } {
  const state = stateName(states, value);
  if (previous !== undefined && previous.state === state) return { track: previous };
  const draft: Draft = {
    type: EVENT_TYPES.stateChanged,
    subject: tag,
    time,
    data: {
      state,
      previous_state: previous?.state ?? null,
      raw: value,
      previous_duration_ms: previous === undefined ? null : Math.max(0, time - previous.since),
    },
    topicClass: "state",
  };
  return { track: { state, since: time }, draft };
}
