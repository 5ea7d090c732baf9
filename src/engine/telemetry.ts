/**
 * Telemetry of one tag: initial, change (past the deadband, see deadband.ts), heartbeat, and
 * min_interval. Contract:
 * - The first good value is reported with reason initial (previous null).
 * - A good value past the deadband of the last *reported* value is reported with reason
 *   change; values within it are not, and never move the base, so slow drifts add up. Bad
 *   periods do not move it either: after a recovery the comparison resumes from the last
 *   reported value.
 * - min_interval: at most one telemetry event per interval. A change within the interval is
 *   held back, and every later good value replaces it (the latest value wins). When the
 *   interval ends (tick(), or the next sample after it) the held value is compared with the
 *   last reported value again and reported if still past the deadband, with the time of the
 *   sample it came from. So a change is never lost, only delayed (flush() releases it at
 *   shutdown); a value that went back inside the deadband meanwhile is not reported.
 * - heartbeat: when no telemetry event was sent for heartbeatMs (and at least min_interval),
 *   the last reported value is sent again with reason heartbeat, previous equal to it, the
 *   tag's current quality and the tick's time.
 * - Engine time (`now`) drives the intervals; event times are sample times (tick: now).
 * data: { value, previous, quality, unit?, reason }.
 */
import type { Quality, TagValue } from "../events/sample.ts";
import { EVENT_TYPES, type JsonValue } from "../events/types.ts";
import { exceedsDeadband } from "./deadband.ts";
import type { Draft, EngineTag } from "./types.ts";

export interface TelemetryTrack {
  reported?: { value: TagValue };
  /** Engine time of the last telemetry event. */
  lastEventAt?: number;
  /** A change held back by min_interval: the latest value and its sample time. */
  held?: { value: TagValue; time: number };
}

type Reason = "initial" | "change" | "heartbeat";

function draft(
  tag: EngineTag,
  value: TagValue,
  previous: TagValue,
  quality: Quality,
  reason: Reason,
  time: number,
): Draft {
  const data: { [key: string]: JsonValue } = { value, previous, quality };
  if (tag.unit !== undefined) data.unit = tag.unit;
  data.reason = reason;
  return { type: EVENT_TYPES.telemetry, subject: tag.name, time, data, topicClass: "telemetry" };
}

function report(
  tag: EngineTag,
  track: TelemetryTrack,
  value: TagValue,
  time: number,
  now: number,
): Draft {
  const previous = track.reported;
  track.reported = { value };
  track.lastEventAt = now;
  track.held = undefined;
  return previous === undefined
    ? draft(tag, value, null, "good", "initial", time)
    : draft(tag, value, previous.value, "good", "change", time);
}

function releaseAt(tag: EngineTag, track: TelemetryTrack): number {
  return (track.lastEventAt ?? 0) + (tag.minIntervalMs ?? 0);
}

/** Releases a held value: reported if still past the deadband, else dropped. */
function release(tag: EngineTag, track: TelemetryTrack, now: number): Draft | undefined {
  const held = track.held;
  track.held = undefined;
  if (held === undefined || track.reported === undefined) return undefined;
  if (!exceedsDeadband(tag, track.reported.value, held.value)) return undefined;
  return report(tag, track, held.value, held.time, now);
}

/** A good value arrived. */
export function telemetryOnGood(
  tag: EngineTag,
  track: TelemetryTrack,
  value: TagValue,
  time: number,
  now: number,
): Draft | undefined {
  if (track.reported === undefined) return report(tag, track, value, time, now);
  const due = now >= releaseAt(tag, track);
  if (track.held !== undefined) {
    track.held = { value, time };
    return due ? release(tag, track, now) : undefined;
  }
  if (!exceedsDeadband(tag, track.reported.value, value)) return undefined;
  if (!due) {
    track.held = { value, time };
    return undefined;
  }
  return report(tag, track, value, time, now);
}

/** Releases a held change now, whatever is left of min_interval (shutdown). */
export function telemetryFlush(
  tag: EngineTag,
  track: TelemetryTrack,
  now: number,
): Draft | undefined {
  return track.held === undefined ? undefined : release(tag, track, now);
}

/** When telemetryTick could emit something. */
export function telemetryDue(tag: EngineTag, track: TelemetryTrack): number | undefined {
  if (track.held !== undefined) return releaseAt(tag, track);
  if (tag.heartbeatMs === undefined || track.reported === undefined) return undefined;
  return (track.lastEventAt ?? 0) + Math.max(tag.heartbeatMs, tag.minIntervalMs ?? 0);
}

/** Releases a held change or sends a heartbeat when due. */
export function telemetryTick(
  tag: EngineTag,
  track: TelemetryTrack,
  now: number,
  quality: Quality,
): Draft | undefined {
  if (track.held !== undefined) {
    if (now < releaseAt(tag, track)) return undefined;
    const released = release(tag, track, now);
    if (released !== undefined) return released;
  }
  const due = telemetryDue(tag, track);
  if (due === undefined || now < due || track.reported === undefined) return undefined;
  track.lastEventAt = now;
  const value = track.reported.value;
  return draft(tag, value, value, quality, "heartbeat", now);
}
