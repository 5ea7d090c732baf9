/**
 * A level-free wake-up call: `wait()` resolves at the next `notify()`. Callers check their
 * condition and call wait() in the same synchronous step, so no notification is missed.
 */
export class Wakeup {
  private waiters: (() => void)[] = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
