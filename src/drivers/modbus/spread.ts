/**
 * `spread_requests`: a poll group whose tags take several requests becomes one group per step,
 * each polled at the group's interval with its own phase, k x interval / n for the k-th of n
 * steps, so that the requests go out evenly over the interval instead of back to back at its
 * start. `true` makes each request a step; a number N puts the requests in N steps of
 * consecutive requests (as even as they divide: 8 requests in 3 steps are 3, 3 and 2), each
 * step's requests back to back. A tag is in exactly one request (read-planner.ts), so every tag
 * stays in exactly one group, and tags read together (one request: a value is never split) stay
 * together. The first poll of every group is at the start, so that every tag has a value at
 * once (after a start or a reconnect); the next is at its phase.
 *
 * Why: a poll of many requests otherwise hands the engine, the journal and the broker all its
 * changes at once, and the last of them waits for all the others at every step (issue 12: 1,000
 * registers in 8 requests every 100 ms, p99 from read to subscriber 76 ms back to back, 20 ms
 * spread). Each step's changes are a commit of the journal's of their own, so a step per request
 * costs CPU (80 commits a second there instead of 10); 2 steps halve the burst for 10 more. The
 * PLC, the network and a serial line see an even load too. What it changes: the values of one
 * poll are read up to an interval apart instead of a few milliseconds apart; values that must be
 * read together belong in one request (contiguous registers).
 *
 * `auto` (the default) spreads only a poll large enough to make a burst: its requests go in as
 * many steps as keep each step to AUTO_TAGS_PER_STEP tags, but never two steps closer than
 * AUTO_STEP_MIN_MS (the journal's default commit interval: closer steps would wait for each
 * other's group commit) and never more steps than requests. 1,000 registers in 8 requests every
 * 100 ms: 2 steps. 5,000 every second in 40 requests: 10. 400 tags, or a poll of one request:
 * back to back, as before. Why: a broker passes a burst of QoS 1 messages on to a subscriber one
 * at a time, and with nothing but mqtt.js in front of mosquitto the last of 1,000 sent at once
 * every 100 ms arrives 26 ms (p99) after it was sent; in 2 steps 10 ms, in 8 steps 4 ms
 * (`node test/bench/burst-latency.ts`, issue 12's 2-core machine).
 *
 * A poll that would still hand over more than AUTO_TAGS_MAX_STEP tags a step stays back to
 * back: 10,000 registers every 100 ms would go in 2 steps of 5,000, bursts no broker passes in
 * time either way, and in the peer harness the gateway delivered 0.86 and 0.97 of Node-RED's
 * rate with them against 0.98-1.03 without (issue 12).
 */
/** Most tags a step of `auto` hands over at once. */
export const AUTO_TAGS_PER_STEP = 500;
/** Closest two steps of `auto` come, in milliseconds. */
export const AUTO_STEP_MIN_MS = 50;
/** Most tags a step of `auto` may hand over when the interval has no room for smaller steps. */
export const AUTO_TAGS_MAX_STEP = 1000;

/** How many steps a poll group's requests go in (1: back to back). */
export function stepsOf(
  setting: boolean | number | "auto",
  group: { interval: number; tags: number; requests: number },
): number {
  if (setting === true) return group.requests;
  if (setting === false) return 1;
  if (setting !== "auto") return setting;
  const wanted = Math.ceil(group.tags / AUTO_TAGS_PER_STEP);
  const room = Math.max(1, Math.floor(group.interval / AUTO_STEP_MIN_MS));
  const steps = Math.max(1, Math.min(group.requests, wanted, room));
  return group.tags / steps > AUTO_TAGS_MAX_STEP ? 1 : steps;
}

export interface SpreadSlice<T, R> {
  interval: number;
  phase: number;
  tags: string[];
  members: T[];
  /** The step's requests: its plan, until what the device teaches plans it again. */
  plan: R[];
}

export function spread<T extends { name: string }, R extends { tags: readonly T[] }>(
  group: { interval: number; members: readonly T[] },
  plan: readonly R[],
  steps: number = plan.length,
): SpreadSlice<T, R>[] {
  const n = Math.min(steps, plan.length);
  const slices: SpreadSlice<T, R>[] = [];
  for (let k = 0; k < n; k++) {
    const requests = plan.slice(
      Math.ceil((k * plan.length) / n),
      Math.ceil(((k + 1) * plan.length) / n),
    );
    const inStep = new Set(requests.flatMap((req) => req.tags));
    const members = group.members.filter((t) => inStep.has(t));
    slices.push({
      interval: group.interval,
      phase: (k * group.interval) / n,
      tags: members.map((t) => t.name),
      members,
      plan: requests,
    });
  }
  return slices;
}
