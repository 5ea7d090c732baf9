/**
 * Injected faults. A fault stays until clear(). For each request: the delay is the largest
 * delay among matching delay faults, plus the turnaround (the device's own answer time, drawn
 * per request); the action is the most recently added matching exception, silence, drop or
 * malformed fault (none: answer normally); the duplicate and torn shapes (the reply sent twice,
 * the reply sent in two pieces), the transaction id quirk and hold are the most recently added
 * matching ones and apply to whatever the action sends. A request matches when every field
 * given in the FaultMatch equals the request's; `address` matches when it lies in the
 * request's [address, address + quantity); with `probability`, a matching request is then
 * taken with that chance, drawn from the simulator's seeded generator (same seed, same
 * sequence of requests: same faults). Ranges ([min, max] ms) are drawn uniformly per request.
 */
import type { Rng } from "./rng.ts";
import type {
  AppliedFault,
  FaultControl,
  FaultMatch,
  MalformedKind,
  Millis,
  TransactionIdQuirk,
} from "./types.ts";

export type FaultAction =
  | { kind: "exception"; code: number }
  | { kind: "silence" }
  | { kind: "drop" }
  | { kind: "malformed"; malformed: MalformedKind };

export interface FaultDecision {
  delayMs: number;
  action: FaultAction | undefined;
  /**
   * Send a copy of the reply this long after it (0: back to back; "held": on releaseHeld());
   * undefined: no copy.
   */
  duplicateAfterMs?: number | "held";
  /** Send the reply in two pieces this far apart; undefined: in one piece. */
  tornPauseMs?: number;
  /** MBAP only: answer under another transaction id than the request's. */
  transactionId?: TransactionIdQuirk;
  /** Keep the reply until releaseHeld(). */
  hold?: boolean;
}

interface MatchedRequest {
  unitId: number;
  functionCode: number;
  address: number;
  quantity: number;
}

interface Rule {
  match: FaultMatch;
  delayMs?: Millis;
  action?: FaultAction;
  duplicateAfterMs?: Millis | "held";
  tornPauseMs?: Millis;
  transactionId?: TransactionIdQuirk;
  hold?: boolean;
}

function checkMs(what: string, ms: Millis): void {
  const [min, max] = typeof ms === "number" ? [ms, ms] : ms;
  if (!Number.isFinite(min) || !Number.isFinite(max) || min < 0 || max < min) {
    throw new RangeError(`fault ${what} ${String(ms)} ms is not >= 0 (or a [min, max] range)`);
  }
}

function checkMatch(match: FaultMatch): FaultMatch {
  const p = match.probability;
  if (p !== undefined && !(p >= 0 && p <= 1)) {
    throw new RangeError(`fault probability ${p} is not within 0..1`);
  }
  return { ...match };
}

const MALFORMED_KINDS: readonly MalformedKind[] = [
  "short-frame",
  "wrong-transaction-id",
  "byte-count-mismatch",
  "oversized",
  "stall-mid-frame",
  "garbage",
];

const QUIRKS: readonly TransactionIdQuirk[] = ["zero", "plus-one", "swapped"];

export function matches(match: FaultMatch, request: MatchedRequest): boolean {
  if (match.unitId !== undefined && match.unitId !== request.unitId) return false;
  if (match.functionCode !== undefined && match.functionCode !== request.functionCode) {
    return false;
  }
  if (match.address !== undefined) {
    const { address, quantity } = request;
    if (match.address < address || match.address >= address + quantity) return false;
  }
  return true;
}

/** The transaction id a quirky device answers `tid` with. */
export function quirkyTransactionId(quirk: TransactionIdQuirk, tid: number): number {
  switch (quirk) {
    case "zero":
      return 0;
    case "plus-one":
      return (tid + 1) & 0xffff;
    case "swapped":
      return ((tid & 0xff) << 8) | (tid >>> 8);
  }
}

export class Faults implements FaultControl {
  readonly applied: Record<AppliedFault, number> = {
    turnaround: 0,
    delay: 0,
    duplicate: 0,
    torn: 0,
    exception: 0,
    silence: 0,
    drop: 0,
    malformed: 0,
    transactionId: 0,
    hold: 0,
  };
  #rules: Rule[] = [];
  #turnaround: { range: Millis; match: FaultMatch } | undefined;
  readonly #rng: Rng;

  constructor(rng: Rng) {
    this.#rng = rng;
  }

  delay(ms: Millis, match: FaultMatch = {}): void {
    checkMs("delay", ms);
    this.#rules.push({ match: checkMatch(match), delayMs: ms });
  }

  turnaround(ms: Millis, match: FaultMatch = {}): void {
    checkMs("turnaround", ms);
    this.#turnaround = { range: ms, match: checkMatch(match) };
  }

  duplicate(afterMs: Millis | "held", match: FaultMatch = {}): void {
    if (afterMs !== "held") checkMs("duplicate", afterMs);
    this.#rules.push({ match: checkMatch(match), duplicateAfterMs: afterMs });
  }

  torn(pauseMs: Millis, match: FaultMatch = {}): void {
    checkMs("torn pause", pauseMs);
    this.#rules.push({ match: checkMatch(match), tornPauseMs: pauseMs });
  }

  exception(code: number, match: FaultMatch = {}): void {
    if (!Number.isInteger(code) || code < 1 || code > 255) {
      throw new RangeError(`Modbus exception code ${code} is not 1..255`);
    }
    this.#rules.push({ match: checkMatch(match), action: { kind: "exception", code } });
  }

  silence(match: FaultMatch = {}): void {
    this.#rules.push({ match: checkMatch(match), action: { kind: "silence" } });
  }

  drop(match: FaultMatch = {}): void {
    this.#rules.push({ match: checkMatch(match), action: { kind: "drop" } });
  }

  malformed(kind: MalformedKind, match: FaultMatch = {}): void {
    if (!MALFORMED_KINDS.includes(kind)) {
      throw new RangeError(`malformed kind ${kind} is not one of ${MALFORMED_KINDS.join(", ")}`);
    }
    this.#rules.push({ match: checkMatch(match), action: { kind: "malformed", malformed: kind } });
  }

  transactionIds(quirk: TransactionIdQuirk, match: FaultMatch = {}): void {
    if (!QUIRKS.includes(quirk)) {
      throw new RangeError(`transaction id quirk ${quirk} is not one of ${QUIRKS.join(", ")}`);
    }
    this.#rules.push({ match: checkMatch(match), transactionId: quirk });
  }

  hold(match: FaultMatch = {}): void {
    this.#rules.push({ match: checkMatch(match), hold: true });
  }

  clear(): void {
    this.#rules = [];
    this.#turnaround = undefined;
  }

  decide(request: MatchedRequest): FaultDecision {
    const decision: FaultDecision = { delayMs: 0, action: undefined };
    const turn = this.#turnaround;
    if (turn !== undefined && this.#taken(turn.match, request)) {
      decision.delayMs = this.#draw(turn.range);
      this.applied.turnaround += 1;
    }
    let delay: number | undefined;
    for (const rule of this.#rules) {
      if (!this.#taken(rule.match, request)) continue;
      if (rule.delayMs !== undefined) delay = Math.max(delay ?? 0, this.#draw(rule.delayMs));
      if (rule.action !== undefined) decision.action = rule.action;
      if (rule.duplicateAfterMs !== undefined) {
        const after = rule.duplicateAfterMs;
        decision.duplicateAfterMs = after === "held" ? after : this.#draw(after);
      }
      if (rule.tornPauseMs !== undefined) decision.tornPauseMs = this.#draw(rule.tornPauseMs);
      if (rule.transactionId !== undefined) decision.transactionId = rule.transactionId;
      if (rule.hold) decision.hold = true;
    }
    if (delay !== undefined) {
      decision.delayMs += delay;
      this.applied.delay += 1;
    }
    this.#count(decision);
    return decision;
  }

  #count(decision: FaultDecision): void {
    const { applied } = this;
    if (decision.action !== undefined) applied[decision.action.kind] += 1;
    if (decision.duplicateAfterMs !== undefined) applied.duplicate += 1;
    if (decision.tornPauseMs !== undefined) applied.torn += 1;
    if (decision.transactionId !== undefined) applied.transactionId += 1;
    if (decision.hold) applied.hold += 1;
  }

  #taken(match: FaultMatch, request: MatchedRequest): boolean {
    if (!matches(match, request)) return false;
    return match.probability === undefined || this.#rng() < match.probability;
  }

  #draw(ms: Millis): number {
    if (typeof ms === "number") return ms;
    const [min, max] = ms;
    return min + this.#rng() * (max - min);
  }
}
