/**
 * Who waits for the journal to grow: waitForAppend(after) resolves once a record with a
 * sequence above `after` is committed, rejects when its signal aborts or the journal closes.
 * Every waiter is settled exactly once and its abort listener removed.
 */
import { abortError, GIVE_UP } from "../lib/abort.ts";
import { GatewayError } from "../lib/errors.ts";

interface Waiter {
  after: bigint;
  resolve: () => void;
  reject: (err: unknown) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

const CANCELLED = new GatewayError("ABORTED", "wait for an append given up");

export class AppendWaiters {
  readonly #waiters = new Set<Waiter>();

  wait(after: bigint, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        after,
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.#waiters.delete(waiter);
          // a waiter given up on by its own caller (the publisher, at every caught-up wait)
          // needs no stack trace: a shared error, so giving up costs next to nothing
          reject(signal.reason === GIVE_UP ? CANCELLED : abortError(signal));
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** After a commit: resolves everyone waiting for less than `highWater`. */
  notify(highWater: bigint): void {
    for (const waiter of this.#waiters) {
      if (highWater > waiter.after) this.#settle(waiter).resolve();
    }
  }

  /** At close: rejects everyone still waiting. */
  closeAll(): void {
    for (const waiter of this.#waiters)
      this.#settle(waiter).reject(new GatewayError("ABORTED", "journal closed"));
  }

  #settle(waiter: Waiter): Waiter {
    this.#waiters.delete(waiter);
    waiter.signal.removeEventListener("abort", waiter.onAbort);
    return waiter;
  }
}
