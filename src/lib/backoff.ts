/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): delay = random(0, min(max, base * 2^attempt)). Full jitter spreads reconnects of
 * many gateways after a plant-wide network blip instead of having them hit a PLC in step.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly options: BackoffOptions;

  constructor(options: BackoffOptions) {
    this.options = options;
  }

  /** The next delay in milliseconds; grows until reset(). Never below 1/10 of the base. */
  next(): number {
    const { baseMs, maxMs } = this.options;
    const random = this.options.random ?? Math.random;
    const cap = Math.min(maxMs, baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.max(baseMs / 10, Math.floor(random() * cap));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
