/**
 * Telemetry of one tag: initial, change (past the deadband, see deadband.ts), heartbeat, and
 * min_interval. Contract:
 * - Values are good or uncertain readings (issue 11.9: an uncertain value is still a value; it
 *   is published with quality uncertain and the reason the source gave, e.g. the OPC UA status
 *   name UncertainLastUsableValue, in quality_reason). Bad and stale readings carry no value.
 * - The first value is reported with reason initial (previous null).
 * - A value past the deadband of the last *reported* value is reported with reason change;
 *   values within it are not, and never move the base, so slow drifts add up. So is a value
 *   whose quality (good or uncertain) differs from the last reported one's, even within the
 *   deadband: a value published as uncertain is published again once it is good. Bad periods
 *   do not move the base either: after a recovery the comparison resumes from the last
 *   reported value.
 * - min_interval: at most one telemetry event per interval. A change within the interval is
 *   held back, and every later value replaces it (the latest value wins). When the interval
 *   ends (tick(), or the next sample after it) the held value is compared with the last
 *   reported value again and reported if it still is a change, with the time of the sample it
 *   came from. So a change is never lost, only delayed (flush() releases it at shutdown); a
 *   value that went back inside the deadband meanwhile (with the same quality) is not reported.
 * - heartbeat: when no telemetry event was sent for heartbeatMs (and at least min_interval),
 *   the last reported value is sent again with reason heartbeat, previous equal to it, the
 *   tag's current quality (and its reason) and the tick's time.
 * - Engine time (`now`) drives the intervals; event times are sample times (tick: now).
 * data: { value, previous, quality, quality_reason?, unit?, reason }; quality_reason (string
 * or null when the source gave none) is present exactly when quality is not good.
 */
import type { Quality, TagValue } from "../events/sample.ts";
import { EVENT_TYPES, type JsonValue } from "../events/types.ts";
import { exceedsDeadband } from "./deadband.ts";
import type { Draft, EngineTag } from "./types.ts";

/** A value to report: a good or uncertain reading, with why it is not good and its time. */
export interface Reading {
  value: TagValue;
  quality: "good" | "uncertain";
  /** Why the quality is not good; null when good or when the source gave no reason. */
  reason: string | null;
  /** The sample's time (source time, else read time). */
  time: number;
}

export interface TelemetryTrack {
  reported?: { value: TagValue; quality: Quality };
  /** Engine time of the last telemetry event. */
  lastEventAt?: number;
  /** A change held back by min_interval: the latest reading. */
  held?: Reading;
}

type Reason = "initial" | "change" | "heartbeat";

function draft(
  tag: EngineTag,
  value: TagValue,
  previous: TagValue,
  quality: Quality,
  qualityReason: string | null,
  reason: Reason,
  time: number,
): Draft {
  // keys in the order the rendered JSON has them (sorted): the renderer then copies nothing
  const data: { [key: string]: JsonValue } = { previous, quality };
  if (quality !== "good") data.quality_reason = qualityReason;
  data.reason = reason;
  if (tag.unit !== undefined) data.unit = tag.unit;
  data.value = value;
  return { type: EVENT_TYPES.telemetry, subject: tag.name, time, data, topicClass: "telemetry" };
}

/**
 * Reports a reading: `track.reported` is moved in place (issue 12: a new object per change
 * outlived the young generation at 10,000 registers and cost the old one's collections).
 */
function report(
  tag: EngineTag,
  track: TelemetryTrack,
  value: TagValue,
  quality: "good" | "uncertain",
  qualityReason: string | null,
  time: number,
  now: number,
): Draft {
  const previous = track.reported;
  const reason = previous === undefined ? "initial" : "change";
  const before = previous === undefined ? null : previous.value;
  if (previous === undefined) track.reported = { value, quality };
  else {
    previous.value = value;
    previous.quality = quality;
  }
  track.lastEventAt = now;
  track.held = undefined;
  return draft(tag, value, before, quality, qualityReason, reason, time);
}

/** Whether a value is news against the last reported one: past the deadband, or another quality. */
function isChange(
  tag: EngineTag,
  track: TelemetryTrack,
  value: TagValue,
  quality: "good" | "uncertain",
): boolean {
  const reported = track.reported;
  if (reported === undefined) return true;
  return reported.quality !== quality || exceedsDeadband(tag, reported.value, value);
}

function releaseAt(tag: EngineTag, track: TelemetryTrack): number {
  return (track.lastEventAt ?? 0) + (tag.minIntervalMs ?? 0);
}

/** Releases a held value: reported if still a change, else dropped. */
function release(tag: EngineTag, track: TelemetryTrack, now: number): Draft | undefined {
  const held = track.held;
  track.held = undefined;
  if (held === undefined || track.reported === undefined) return undefined;
  if (!isChange(tag, track, held.value, held.quality)) return undefined;
  return report(tag, track, held.value, held.quality, held.reason, held.time, now);
}

/**
 * A good or uncertain value arrived: its quality, why it is not good (null when good or
 * unsaid) and its time (source time, else read time). The Reading is made only when held.
 */
export function telemetryOnValue(
  tag: EngineTag,
  track: TelemetryTrack,
  value: TagValue,
  quality: "good" | "uncertain",
  reason: string | null,
  time: number,
  now: number,
): Draft | undefined {
  if (track.reported === undefined) return report(tag, track, value, quality, reason, time, now);
  const due = now >= releaseAt(tag, track);
  if (track.held !== undefined) {
    track.held = { value, quality, reason, time };
    return due ? release(tag, track, now) : undefined;
  }
  if (!isChange(tag, track, value, quality)) return undefined;
  if (!due) {
    track.held = { value, quality, reason, time };
    return undefined;
  }
  return report(tag, track, value, quality, reason, time, now);
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

/** Releases a held change or sends a heartbeat when due, with the tag's current quality. */
export function telemetryTick(
  tag: EngineTag,
  track: TelemetryTrack,
  now: number,
  current: { quality: Quality; reason: string | null },
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
  return draft(tag, value, value, current.quality, current.reason, "heartbeat", now);
}
