/**
 * Report by exception: whether a new value moved past the deadband of the last reported one.
 *
 * For numeric tags (value type integer or float, both values numbers or 64-bit integer text):
 *
 *   delta = |value - last_reported|
 *   no deadband:          report when value !== last_reported (any change)
 *   absolute: a           report when delta > a
 *   percent: p, range:    report when delta > p * (range.max - range.min) / 100
 *   percent: p, no range: report when delta > p * |last_reported| / 100
 *                         (so from 0 any change is reported)
 *
 * "Greater" is strict and robust to float noise: delta counts as greater only when it
 * exceeds the threshold by more than 64 ulps of the largest magnitude involved
 * (64 * Number.EPSILON * max(|value|, |last_reported|, threshold)), so 0.8 - 0.7
 * (0.10000000000000009 in binary) does not pass a 0.1 deadband, while a real change of one
 * part in 10^13 still does. Counter wrap-around (65535 -> 0) is an ordinary, large change.
 *
 * Other tags (bool, string, JSON, or a non-numeric value): any change by value.
 */
import type { TagValue } from "../events/sample.ts";
import type { EngineTag } from "./types.ts";
import { asNumber, sameValue } from "./values.ts";

const NOISE = 64 * Number.EPSILON;

export function deadbandThreshold(tag: EngineTag, lastReported: number): number {
  const band = tag.deadband;
  if (band === undefined) return 0;
  if ("absolute" in band) return band.absolute;
  const base = tag.range ? tag.range.max - tag.range.min : Math.abs(lastReported);
  return (band.percent * base) / 100;
}

export function exceedsDeadband(tag: EngineTag, lastReported: TagValue, value: TagValue): boolean {
  if (sameValue(lastReported, value)) return false;
  const numeric = tag.valueType === "integer" || tag.valueType === "float";
  const last = numeric ? asNumber(lastReported) : undefined;
  const next = numeric ? asNumber(value) : undefined;
  if (last === undefined || next === undefined || tag.deadband === undefined) return true;
  const threshold = deadbandThreshold(tag, last);
  const delta = Math.abs(next - last);
  const noise = NOISE * Math.max(Math.abs(next), Math.abs(last), threshold);
  return delta > threshold + noise;
}
