/**
 * Per unit id health on a shared connection: a unit that timed out twice in a row is skipped
 * until its retry time (1 s, doubling to 30 s), so one dead unit on an RTU bus or behind a
 * gateway costs the others at most one timeout per retry, not one per poll.
 * Requests in flight together that go unanswered together are one silence, not several in a
 * row: a timeout counts only when its request was sent after the unit's last timeout (issue
 * 13.8: two lost replies in one poll over Modbus TCP skipped the unit, every tag of it, for
 * a second). The driver passes a request sent again within a read with its first sending's
 * time, and counts a gateway's exception 0x0B (its target device did not answer) as a timeout.
 */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
const TIMEOUTS_BEFORE_SKIP = 2;

interface State {
  timeouts: number;
  retryAt: number;
  /** When the last timeout counted came. */
  lastAt: number;
}

export class UnitHealth {
  private readonly states = new Map<number, State>();

  /** Why requests to this unit are skipped right now, or undefined to send them. */
  skipReason(unitId: number, now: number): string | undefined {
    const state = this.states.get(unitId);
    if (!state || state.timeouts < TIMEOUTS_BEFORE_SKIP || now >= state.retryAt) return undefined;
    return `unit ${unitId} not responding (${state.timeouts} timeouts in a row); next try in ${Math.ceil((state.retryAt - now) / 1000)} s`;
  }

  /** `sentAt`: when the request that timed out was sent (default: a request one at a time). */
  timedOut(unitId: number, now: number, sentAt = now): void {
    const state = this.states.get(unitId) ?? { timeouts: 0, retryAt: 0, lastAt: -Infinity };
    // sent before (or in the same millisecond as) the last timeout counted: the same silence
    if (sentAt <= state.lastAt) return;
    state.lastAt = now;
    state.timeouts += 1;
    const steps = state.timeouts - TIMEOUTS_BEFORE_SKIP;
    if (steps >= 0) state.retryAt = now + Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** steps);
    this.states.set(unitId, state);
  }

  succeeded(unitId: number): void {
    this.states.delete(unitId);
  }

  reset(): void {
    this.states.clear();
  }
}
