/**
 * A tag's quality and staleness. Contract:
 * - Qualities are good, uncertain, bad and stale. A successful read is a good or uncertain
 *   sample; good samples carry values into every rule, uncertain ones into telemetry only
 *   (engine.ts).
 * - quality.changed { quality, previous_quality, reason, reason_code, source_time,
 *   last_good_value } is emitted when the quality differs from the previous one: good ->
 *   bad/uncertain, between non-good qualities, back to good (reason and reason_code null). A
 *   tag first seen with a non-good quality emits one with previous_quality null; a tag first
 *   seen good emits none. The same quality with another reason is not a change, unless the
 *   sample carries a reason code other than the tag's last one (issue 13.4): bad "not
 *   connected" (no code) and then bad BadNodeIdUnknown is an event, with previous_quality equal
 *   to quality. The same code with other wording is not; a sample without a code changes
 *   nothing (its source says nothing new), and the tag's code stays the last one given.
 * - reason is the sample's reason (for OPC UA the status name, e.g. UncertainLastUsableValue),
 *   reason_code its stable code (TagSample.reasonCode), null when the sample gives none.
 * - A quality change is dated when the gateway observed it (issue 11.10): the read time of the
 *   sample that showed it (stale: the tick's time), never earlier than the tag's previous
 *   quality change, so that sorted by time a bad period always ends after it began. The
 *   sample's own source time (a recovered OPC UA value keeps the source timestamp of its last
 *   change, which may lie before the outage) travels as data.source_time (ISO 8601; null when
 *   the sample has none, and for stale).
 * - last_good_value is the value of the last good sample before this one (null if none).
 * - Stale: a tag not read successfully for staleAfterMs (since its last successful read, or
 *   since the engine first learned the time when it was never read) becomes stale once, at
 *   tick time. While stale, bad samples change nothing; the next successful read ends it.
 */

import { formatDuration } from "../config/units.ts";
import type { Quality, TagSample, TagValue } from "../events/sample.ts";
import type { JsonValue } from "../events/types.ts";

export interface QualityTrack {
  quality?: Quality;
  /** Why the current quality is not good (the latest reason given); undefined while good. */
  reason?: string;
  /** The last reason code given since the quality was entered; undefined while good or none. */
  reasonCode?: string;
  /** The last good value; undefined while there was none. */
  lastGood?: { value: TagValue };
  /** The engine time of the last successful read. */
  lastReadAt?: number;
  /** The time of the tag's last quality.changed event. */
  changedAt?: number;
}

export interface QualityData {
  [key: string]: JsonValue;
  quality: Quality;
  previous_quality: Quality | null;
  reason: string | null;
  reason_code: string | null;
  source_time: string | null;
  last_good_value: JsonValue;
}

/** A quality.changed: its data and its time (when the gateway observed the change). */
export interface QualityChange {
  data: QualityData;
  time: number;
}

/** What the quality rule reads of a sample (after the engine's NaN normalization). */
export type Observed = Pick<
  TagSample,
  "quality" | "reason" | "reasonCode" | "sourceTime" | "readTime"
>;

function dated(track: QualityTrack, observedAt: number, data: QualityData): QualityChange {
  const time = Math.max(observedAt, track.changedAt ?? observedAt);
  track.changedAt = time;
  return { data, time };
}

/** Records a sample's quality; returns the quality.changed when it is a change. */
export function qualityOnSample(
  track: QualityTrack,
  sample: Observed,
  now: number,
): QualityChange | undefined {
  const { quality } = sample;
  const read = quality === "good" || quality === "uncertain";
  if (read) track.lastReadAt = now;
  const previous = track.quality;
  if (!read && previous === "stale") return undefined;
  const good = quality === "good";
  const code = good ? undefined : sample.reasonCode;
  const newCode = code !== undefined && code !== track.reasonCode;
  track.quality = quality;
  track.reason = good ? undefined : sample.reason;
  if (good || previous !== quality || newCode) track.reasonCode = code;
  if (previous === undefined && good) return undefined;
  if (previous === quality && !newCode) return undefined;
  return dated(track, sample.readTime, {
    quality,
    previous_quality: previous ?? null,
    reason: good ? null : (sample.reason ?? null),
    reason_code: good ? null : (sample.reasonCode ?? null),
    source_time: sample.sourceTime === undefined ? null : new Date(sample.sourceTime).toISOString(),
    last_good_value: track.lastGood?.value ?? null,
  });
}

/** When the tag becomes stale, or undefined when it cannot (no rule, already stale). */
export function staleDue(
  track: QualityTrack,
  staleAfterMs: number | undefined,
  clockStart: number | undefined,
): number | undefined {
  if (staleAfterMs === undefined || track.quality === "stale") return undefined;
  const since = track.lastReadAt ?? clockStart;
  return since === undefined ? undefined : since + staleAfterMs;
}

/** Marks the tag stale at `now`; returns the quality.changed. */
export function markStale(track: QualityTrack, staleAfterMs: number, now: number): QualityChange {
  const previous = track.quality;
  const reason = `not read successfully for ${formatDuration(staleAfterMs)}`;
  track.quality = "stale";
  track.reason = reason;
  track.reasonCode = undefined;
  return dated(track, now, {
    quality: "stale",
    previous_quality: previous ?? null,
    reason,
    reason_code: null,
    source_time: null,
    last_good_value: track.lastGood?.value ?? null,
  });
}
