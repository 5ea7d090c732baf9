/**
 * When group commits run (src/journal/commit-pace.ts), on a simulated clock: appends at given
 * times, a commit when the pace says so (at once, or at the time it names), every queued append
 * in it. What the journal does with the times is journal.test.ts's.
 */
import { describe, expect, it } from "vitest";
import { CommitPace, REFILL } from "../../src/journal/commit-pace.ts";

const INTERVAL = 50;

/** Commits of appends at `times` (sorted): when each commit ran, how long each append waited. */
function simulate(times: readonly number[], heldFor = 0) {
  const pace = new CommitPace(INTERVAL);
  const commits: number[] = [];
  const waits: number[] = [];
  let queued: number[] = [];
  let due = Number.POSITIVE_INFINITY;
  const commit = (at: number) => {
    pace.spend(at);
    commits.push(at);
    for (const t of queued) waits.push(at - t);
    queued = [];
    due = Number.POSITIVE_INFINITY;
  };
  for (const t of times) {
    if (due <= t) commit(due);
    queued.push(t);
    const next = pace.due(t, t - heldFor);
    if (next <= t) commit(t);
    else due = Math.min(due, next);
  }
  if (queued.length > 0) commit(due);
  return { commits, waits };
}

describe("the commit pace", () => {
  it("commits appends that come an interval apart at once, early or late by a little", () => {
    // the two steps of a poll of 100 ms with spread_requests: 2, and the clock's jitter
    const times = Array.from({ length: 200 }, (_, i) => i * INTERVAL + (i % 2 === 0 ? 2 : -2));
    const { commits, waits } = simulate(times);
    expect(commits).toHaveLength(times.length);
    expect(Math.max(...waits)).toBe(0);
  });

  it("commits them at once again a few intervals after two came together", () => {
    // the first poll of both steps at once at the start, then one step an interval apart: the
    // second commit spends the credit below one, and it must come back
    const times = [0, 1, ...Array.from({ length: 100 }, (_, i) => (i + 1) * INTERVAL)];
    const { waits } = simulate(times);
    expect(Math.max(...waits.slice(10))).toBe(0);
  });

  it("keeps to at most REFILL commits an interval however fast appends come", () => {
    // an append every 5 ms for 10 s
    const times = Array.from({ length: 2000 }, (_, i) => i * 5);
    const { commits, waits } = simulate(times);
    expect(commits.length).toBeLessThanOrEqual((REFILL * 10_000) / INTERVAL + 2);
    expect(commits.length).toBeGreaterThanOrEqual(10_000 / INTERVAL - 2);
    expect(Math.max(...waits)).toBeLessThanOrEqual(INTERVAL);
  });

  it("commits a lone append at once and makes the next one right after it wait", () => {
    const pace = new CommitPace(INTERVAL);
    expect(pace.due(1000)).toBe(1000);
    pace.spend(1000);
    const next = pace.due(1001);
    expect(next).toBeGreaterThan(1001);
    expect(next).toBeLessThanOrEqual(1001 + INTERVAL);
  });

  it("never lets an event wait longer than an interval from when it was taken in", () => {
    // events held 30 ms by the caller's queue before they reach the journal
    const times = Array.from({ length: 500 }, (_, i) => i * 7);
    const { waits } = simulate(times, 30);
    expect(Math.max(...waits) + 30).toBeLessThanOrEqual(INTERVAL);
  });
});
