/**
 * What the full-disk chaos runs share: the built gateway logging every warning, and the checks
 * of the consumer's stream against the journal (every gap announced, nothing journaled lost).
 */
import { expect } from "vitest";
import {
  deduplicate,
  type GatewayProcess,
  isWill,
  type Received,
  startGateway,
  waitUntil,
} from "../e2e/harness.ts";
import { type Changing, lastReadingArrived } from "./config.ts";

const OVERFLOW = "plc2mqtt.journal.overflow";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The built gateway, as test/e2e/harness.ts starts it, but logging every warning (no repeat
 * throttle): the tests count the journal's drop lines.
 */
export function startLoggingGateway(configPath: string): GatewayProcess {
  return startGateway(configPath, ["--log-repeat-interval", "0"]);
}

/** Waits until no message arrived for two seconds running (at most `timeoutMs`). */
export async function quiet(messages: readonly unknown[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  let still = 0;
  while (still < 2) {
    if (Date.now() > deadline) throw new Error(`the stream never went quiet in ${timeoutMs} ms`);
    if (messages.length === seen) still++;
    else [seen, still] = [messages.length, 0];
    await sleep(1000);
  }
}

/**
 * The end of a run: the plant stops, everything journaled drains (its newest reading arrives,
 * then what was journaled after it: the stream goes quiet), and the gateway, still up, stops
 * cleanly. A gateway that stopped journaling or cannot drain fails here.
 */
export async function drainAndStop(
  messages: readonly Received[],
  changing: Changing,
  gateway: GatewayProcess,
): Promise<void> {
  changing.stop();
  await waitUntil(() => lastReadingArrived(messages, changing.tick), 120_000, "the last reading");
  await quiet(messages, 60_000);
  expect(gateway.child.exitCode, gateway.output().slice(-3000)).toBeNull();
  expect(await gateway.stop()).toBe(0);
}

/** How many log lines of the gateway's output match `pattern`. */
export function lines(output: string, pattern: RegExp): number {
  return output.split("\n").filter((l) => pattern.test(l)).length;
}

/** The journal's count of dropped events, as its last drop line says (0 when none). */
export function totalDropped(output: string): number {
  let total = 0;
  for (const m of output.matchAll(/"total_dropped":(\d+)/g)) total = Math.max(total, Number(m[1]));
  return total;
}

/**
 * The consumer's view must hold every event the journal still holds, de-duplicated by id, in
 * sequence order, and every gap in it must be announced: an overflow notice received whose
 * `oldest_kept_sequence` is the event right after the gap (a notice that a later round dropped
 * is counted in that round's notice, not its events: so the count is held against the
 * journal's own total). Returns the stream and the notices.
 */
export function expectAnnouncedGapsAndComplete(
  messages: readonly Received[],
  journal: readonly bigint[],
  dropped: number,
): { stream: Received[]; notices: Received[]; gaps: number } {
  const stream = deduplicate(messages).filter((m) => !isWill(m));
  const notices = stream.filter((m) => m.event.type === OVERFLOW);
  const resumes = new Set(notices.map((m) => String(m.event.data.oldest_kept_sequence)));
  let missing = 0n;
  let gaps = 0;
  for (let i = 1; i < stream.length; i++) {
    const before = BigInt(stream[i - 1]!.event.sequence);
    const after = BigInt(stream[i]!.event.sequence);
    if (after <= before) throw new Error(`sequence ${after} follows ${before}: a reordering`);
    if (after === before + 1n) continue;
    gaps++;
    missing += after - before - 1n;
    if (!resumes.has(stream[i]!.event.sequence)) {
      throw new Error(
        `sequence ${after} follows ${before}: a gap no overflow notice announces (notices resume at ${[...resumes].map(Number).join(", ")})`,
      );
    }
  }
  if (missing > BigInt(dropped)) {
    throw new Error(`${missing} events missing in the stream, the journal dropped ${dropped}`);
  }
  const received = new Set(stream.map((m) => BigInt(m.event.sequence)));
  const lost = journal.filter((s) => !received.has(s));
  if (lost.length > 0)
    throw new Error(`journaled but never received: ${lost.slice(0, 20).join(", ")}`);
  return { stream, notices, gaps };
}
