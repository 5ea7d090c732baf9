/**
 * A level-free wake-up call: `wait()` resolves at the next `notify()`. Callers check their
 * condition and call wait() in the same synchronous step, so no notification is missed.
 *
 * A wait raced against something else passes a signal, aborted once the race is over: its
 * waiter then leaves. Without it, a Wakeup that is seldom notified kept one waiter (and the
 * race's promises) per wait for as long as the process ran (issue 12: the publisher's
 * `stirred`, raced at every wait for the journal, held 390 of them after 20 s at 1,000
 * registers, and grew with every wait after).
 */
export class Wakeup {
  private waiters: (() => void)[] = [];

  wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return;
      this.waiters.push(resolve);
      signal?.addEventListener(
        "abort",
        () => {
          const at = this.waiters.indexOf(resolve);
          if (at !== -1) this.waiters.splice(at, 1);
        },
        { once: true },
      );
    });
  }

  /** How many wait now. */
  get waiting(): number {
    return this.waiters.length;
  }

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
