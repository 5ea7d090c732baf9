/**
 * A tag's quality and staleness. Contract:
 * - Qualities are good, uncertain, bad and stale. A successful read is a good or uncertain
 *   sample; only good samples carry values into the other rules.
 * - quality.changed { quality, previous_quality, reason, last_good_value } is emitted when the
 *   quality differs from the previous one: good -> bad/uncertain, between non-good qualities,
 *   back to good (reason null). A tag first seen with a non-good quality emits one with
 *   previous_quality null; a tag first seen good emits none. The same quality with another
 *   reason is not a change.
 * - last_good_value is the value of the last good sample before this one (null if none).
 * - Stale: a tag not read successfully for staleAfterMs (since its last successful read, or
 *   since the engine first learned the time when it was never read) becomes stale once, at
 *   tick time. While stale, bad samples change nothing; the next successful read ends it.
 */

import { formatDuration } from "../config/units.ts";
import type { Quality, TagValue } from "../events/sample.ts";
import type { JsonValue } from "../events/types.ts";

export interface QualityTrack {
  quality?: Quality;
  /** The last good value; undefined while there was none. */
  lastGood?: { value: TagValue };
  /** The engine time of the last successful read. */
  lastReadAt?: number;
}

export interface QualityData {
  [key: string]: JsonValue;
  quality: Quality;
  previous_quality: Quality | null;
  reason: string | null;
  last_good_value: JsonValue;
}

/** Records a sample's quality; returns the quality.changed data when it is a change. */
export function qualityOnSample(
  track: QualityTrack,
  quality: Quality,
  reason: string | undefined,
  now: number,
): QualityData | undefined {
  const read = quality === "good" || quality === "uncertain";
  if (read) track.lastReadAt = now;
  const previous = track.quality;
  if (!read && previous === "stale") return undefined;
  track.quality = quality;
  if (previous === quality || (previous === undefined && quality === "good")) return undefined;
  return {
    quality,
    previous_quality: previous ?? null,
    reason: quality === "good" ? null : (reason ?? null),
    last_good_value: track.lastGood?.value ?? null,
  };
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

/** Marks the tag stale; returns the quality.changed data. */
export function markStale(track: QualityTrack, staleAfterMs: number): QualityData {
  const previous = track.quality;
  track.quality = "stale";
  return {
    quality: "stale",
    previous_quality: previous ?? null,
    reason: `not read successfully for ${formatDuration(staleAfterMs)}`,
    last_good_value: track.lastGood?.value ?? null,
  };
}
