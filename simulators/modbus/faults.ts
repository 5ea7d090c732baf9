/**
 * Injected faults. A fault stays until clear(). For each request: the delay is the largest
 * delay among matching delay faults; the action is the most recently added matching
 * exception, silence, drop or malformed fault (none: answer normally); the duplicate and torn
 * shapes (the reply sent twice, the reply sent in two pieces) are the most recently added
 * matching ones and apply to whatever the action sends. A request matches when
 * every field given in the FaultMatch equals the request's; `address` matches when it lies in
 * the request's [address, address + quantity).
 */
import type { FaultControl, FaultMatch, MalformedKind } from "./types.ts";

export type FaultAction =
  | { kind: "exception"; code: number }
  | { kind: "silence" }
  | { kind: "drop" }
  | { kind: "malformed"; malformed: MalformedKind };

export interface FaultDecision {
  delayMs: number;
  action: FaultAction | undefined;
  /** Send a copy of the reply this long after it (0: back to back); undefined: no copy. */
  duplicateAfterMs?: number;
  /** Send the reply in two pieces this far apart; undefined: in one piece. */
  tornPauseMs?: number;
}

interface MatchedRequest {
  unitId: number;
  functionCode: number;
  address: number;
  quantity: number;
}

interface Rule {
  match: FaultMatch;
  delayMs?: number;
  action?: FaultAction;
  duplicateAfterMs?: number;
  tornPauseMs?: number;
}

function checkMs(what: string, ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`fault ${what} ${ms} ms is not >= 0`);
}

const MALFORMED_KINDS: readonly MalformedKind[] = [
  "short-frame",
  "wrong-transaction-id",
  "byte-count-mismatch",
  "oversized",
  "stall-mid-frame",
  "garbage",
];

const NONE: FaultDecision = { delayMs: 0, action: undefined };

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

export class Faults implements FaultControl {
  #rules: Rule[] = [];

  delay(ms: number, match: FaultMatch = {}): void {
    checkMs("delay", ms);
    this.#rules.push({ match: { ...match }, delayMs: ms });
  }

  duplicate(afterMs: number, match: FaultMatch = {}): void {
    checkMs("duplicate", afterMs);
    this.#rules.push({ match: { ...match }, duplicateAfterMs: afterMs });
  }

  torn(pauseMs: number, match: FaultMatch = {}): void {
    checkMs("torn pause", pauseMs);
    this.#rules.push({ match: { ...match }, tornPauseMs: pauseMs });
  }

  exception(code: number, match: FaultMatch = {}): void {
    if (!Number.isInteger(code) || code < 1 || code > 255) {
      throw new RangeError(`Modbus exception code ${code} is not 1..255`);
    }
    this.#rules.push({ match: { ...match }, action: { kind: "exception", code } });
  }

  silence(match: FaultMatch = {}): void {
    this.#rules.push({ match: { ...match }, action: { kind: "silence" } });
  }

  drop(match: FaultMatch = {}): void {
    this.#rules.push({ match: { ...match }, action: { kind: "drop" } });
  }

  malformed(kind: MalformedKind, match: FaultMatch = {}): void {
    if (!MALFORMED_KINDS.includes(kind)) {
      throw new RangeError(`malformed kind ${kind} is not one of ${MALFORMED_KINDS.join(", ")}`);
    }
    this.#rules.push({ match: { ...match }, action: { kind: "malformed", malformed: kind } });
  }

  clear(): void {
    this.#rules = [];
  }

  decide(request: MatchedRequest): FaultDecision {
    if (this.#rules.length === 0) return NONE;
    const decision: FaultDecision = { delayMs: 0, action: undefined };
    for (const rule of this.#rules) {
      if (!matches(rule.match, request)) continue;
      if (rule.delayMs !== undefined) decision.delayMs = Math.max(decision.delayMs, rule.delayMs);
      if (rule.action !== undefined) decision.action = rule.action;
      if (rule.duplicateAfterMs !== undefined) decision.duplicateAfterMs = rule.duplicateAfterMs;
      if (rule.tornPauseMs !== undefined) decision.tornPauseMs = rule.tornPauseMs;
    }
    return decision;
  }
}
