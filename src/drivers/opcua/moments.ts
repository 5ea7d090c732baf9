/**
 * The samples of one publish response as separate moments, in source-time order (issue 11.4).
 *
 * One publish response can span several publishing intervals (a monitored item's queue holds
 * several samples; a slow client or a busy server delays the response), so it can carry a
 * context tag's change from after another tag's change. The engine treats one apply call as one
 * moment (a tag's context is the last value of the call), and the runner makes each onSamples
 * call one apply call; so the driver hands a response over as one call per source time.
 *
 * Invariants:
 * - Moments come in ascending time, where a sample's time is its source time, else its read
 *   time (the event time the engine gives it); samples of equal time stay together, in arrival
 *   order (a trigger and the values written in the same PLC cycle arrive together).
 * - A tag's samples keep their arrival order: should a server send a tag's values with source
 *   times going backwards (a clock step), such a sample is kept with or after its predecessor,
 *   never moved before it (its event time is still its own source time).
 */
import type { TagSample } from "../types.ts";

export function moments(samples: readonly TagSample[]): TagSample[][] {
  if (samples.length <= 1) return samples.length === 0 ? [] : [[...samples]];
  const lastKey = new Map<string, number>();
  const keyed = samples.map((sample, position) => {
    const own = sample.sourceTime ?? sample.readTime;
    const key = Math.max(own, lastKey.get(sample.tag) ?? Number.NEGATIVE_INFINITY);
    lastKey.set(sample.tag, key);
    return { sample, key, position };
  });
  keyed.sort((a, b) => a.key - b.key || a.position - b.position);
  const out: TagSample[][] = [];
  let current: TagSample[] = [];
  let currentKey = keyed[0]!.key;
  for (const { sample, key } of keyed) {
    if (key !== currentKey && current.length > 0) {
      out.push(current);
      current = [];
    }
    currentKey = key;
    current.push(sample);
  }
  out.push(current);
  return out;
}
