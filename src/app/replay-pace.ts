/**
 * The pace of a replay on request: a token bucket over the records, `rate` per second in bursts
 * of at most `burstOf(rate)` (50 ms worth, at least 1). Between two bursts the generator sleeps
 * on a timer, so the event loop (the daemon's own drain, its PUBACKs, its journal commits) gets
 * a turn at least once per burst: a replay holds the live stream back by at most one burst of
 * work, however long it runs (README "Replay on request" has the measured figures).
 *
 * `stopAfter`: records with a higher sequence end the stream (what was counted when the request
 * was accepted is what is sent). The clock and the sleep are passed in for tests.
 */
import { sleep as realSleep } from "../lib/abort.ts";

export interface PaceOptions {
  /** Records per second. */
  rate: number;
  /** The last sequence to send; a record above it ends the stream. */
  stopAfter?: bigint;
  signal?: AbortSignal;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The most records sent back to back: 50 ms worth of `rate`, at least 1. */
export function burstOf(rate: number): number {
  return Math.max(1, Math.ceil(rate / 20));
}

/** Yields `records` at most `rate` per second (see the header). */
export async function* paced<T extends { sequence: bigint }>(
  records: Iterable<T>,
  options: PaceOptions,
): AsyncGenerator<T> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? realSleep;
  const { rate } = options;
  const burst = burstOf(rate);
  let tokens = burst;
  let last = now();
  const refill = () => {
    const t = now();
    tokens = Math.min(burst, tokens + ((t - last) * rate) / 1000);
    last = t;
  };
  for (const record of records) {
    if (options.stopAfter !== undefined && record.sequence > options.stopAfter) return;
    refill();
    if (tokens < 1) {
      // sleep until a whole burst is back: one timer turn per burst, not per record
      await sleep(Math.ceil(((burst - tokens) * 1000) / rate), options.signal);
      refill();
    }
    tokens -= 1;
    yield record;
  }
}
