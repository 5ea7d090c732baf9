/**
 * Runs one driver: connects with exponential backoff and full jitter, polls each poll group at
 * its interval, reconnects when the connection is lost, and reports device status. Drivers do
 * protocol I/O only; timers, retries and status live here.
 *
 * Invariants:
 * - Nothing thrown by a driver escapes the loop; the loop ends only by stop().
 * - Poll slots are fixed-rate: a group due every 250 ms is read at 0, 250, 500... from its start;
 *   a read that overruns skips the missed slots instead of bursting to catch up.
 * - When the connection is lost every tag of the device gets one bad sample with the reason, so
 *   that nothing downstream keeps showing a value as good that is no longer read.
 * - A driver with subscribe() is subscribed after every connect (alongside its poll groups);
 *   the loss of its connection is seen within SUBSCRIPTION_WATCH_MS through `connected`.
 * - stop() aborts whatever is in progress (connect, read, backoff wait), waits for the loop to
 *   end and closes the driver; afterwards no timer or socket of this device is left.
 * - onPoll (optional, for metrics and health) sees every poll that ended, before onSamples; it
 *   only observes: what it throws is logged and ignored.
 */
import type { Driver, DriverContext, PollGroup, TagSample } from "../drivers/types.ts";
import { sleep } from "../lib/abort.ts";
import { Backoff } from "../lib/backoff.ts";
import { errorMessage, isGatewayError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";

export type DeviceStatus =
  | { status: "connected" }
  | { status: "disconnected"; error: string }
  | { status: "failed"; error: string };

/** One poll of one group, as the runner saw it: samples, or the error that ended it. */
export interface PollReport {
  group: PollGroup;
  /** How long read() took, ms. */
  durationMs: number;
  /** When the poll ended, ms since the epoch. */
  endedAt: number;
  samples?: readonly TagSample[];
  /** read() threw (the connection is treated as lost). */
  error?: unknown;
}

/** How often a subscribing driver's `connected` is checked. */
const SUBSCRIPTION_WATCH_MS = 100;

export interface DriverRunnerOptions {
  driver: Driver;
  log: Logger;
  onSamples: (samples: TagSample[]) => void;
  onStatus?: (status: DeviceStatus) => void;
  /** Observes each finished poll (metrics, health); never affects the loop. */
  onPoll?: (report: PollReport) => void;
  reconnect: { minMs: number; maxMs: number };
  random?: () => number;
}

export class DriverRunner {
  private readonly options: DriverRunnerOptions;
  private readonly stopper = new AbortController();
  private readonly backoff: Backoff;
  private loop: Promise<void> | undefined;

  constructor(options: DriverRunnerOptions) {
    this.options = options;
    this.backoff = new Backoff({
      baseMs: options.reconnect.minMs,
      maxMs: options.reconnect.maxMs,
      ...(options.random ? { random: options.random } : {}),
    });
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => {
      this.options.log.error({ err }, "driver runner ended unexpectedly");
    });
  }

  async stop(): Promise<void> {
    this.stopper.abort(new Error("stopping"));
    await this.loop;
    await this.options.driver.close();
  }

  private get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  private async run(): Promise<void> {
    const { driver, log } = this.options;
    const ctx: DriverContext = { signal: this.stopper.signal, log };
    while (!this.stopped) {
      try {
        await driver.connect(ctx);
      } catch (err) {
        if (this.stopped) break;
        const delay = this.backoff.next();
        log.warn({ err, retryInMs: delay }, "device connect failed");
        this.report({ status: "failed", error: errorMessage(err) });
        await this.pause(delay);
        continue;
      }
      this.backoff.reset();
      log.info({}, "device connected");
      this.report({ status: "connected" });
      await this.pollWhileConnected(ctx);
      if (this.stopped) break;
      const reason = "connection lost";
      this.markAllBad(reason);
      this.report({ status: "disconnected", error: reason });
      await driver.close();
      await this.pause(this.backoff.next());
    }
  }

  private async pollWhileConnected(parent: DriverContext): Promise<void> {
    const { driver } = this.options;
    if (!driver.read && !driver.subscribe) return;
    const connection = new AbortController();
    const signal = AbortSignal.any([parent.signal, connection.signal]);
    const ctx: DriverContext = { ...parent, signal };
    const groups = driver.read
      ? (driver.pollGroups?.() ?? (driver.subscribe ? [] : [{ interval: 1000, tags: [] }]))
      : [];
    const work = groups.map((group) => this.pollGroup(ctx, group, connection));
    if (driver.subscribe) work.push(this.subscribeWhileConnected(ctx, connection));
    await Promise.all(work);
  }

  /**
   * A subscribing driver delivers samples itself; the runner subscribes after each connect and
   * watches `connected` (a driver may have poll groups and a subscription at once).
   */
  private async subscribeWhileConnected(ctx: DriverContext, connection: AbortController) {
    const { driver, log } = this.options;
    try {
      await driver.subscribe!(ctx, (samples) => {
        if (!ctx.signal.aborted) this.options.onSamples(samples);
      });
    } catch (err) {
      if (ctx.signal.aborted || isGatewayError(err, "ABORTED")) return;
      log.error({ err }, "driver subscribe threw; treating the connection as lost");
      connection.abort();
      return;
    }
    while (!ctx.signal.aborted) {
      if (!driver.connected) {
        connection.abort();
        return;
      }
      try {
        await sleep(SUBSCRIPTION_WATCH_MS, ctx.signal);
      } catch {
        return;
      }
    }
  }

  private async pollGroup(ctx: DriverContext, group: PollGroup, connection: AbortController) {
    const { driver, log } = this.options;
    let due = performance.now();
    while (!ctx.signal.aborted) {
      const started = performance.now();
      try {
        const samples = await driver.read!(ctx, group);
        this.observe({ group, durationMs: performance.now() - started, samples });
        this.options.onSamples(samples);
      } catch (err) {
        if (ctx.signal.aborted || isGatewayError(err, "ABORTED")) return;
        this.observe({ group, durationMs: performance.now() - started, error: err });
        log.error({ err }, "driver read threw; treating the connection as lost");
        connection.abort();
        return;
      }
      if (!driver.connected) {
        connection.abort();
        return;
      }
      const now = performance.now();
      due += group.interval;
      if (due < now) due += Math.ceil((now - due) / group.interval) * group.interval;
      try {
        await sleep(due - now, ctx.signal);
      } catch {
        return;
      }
    }
  }

  private markAllBad(reason: string): void {
    const { driver } = this.options;
    const readTime = Date.now();
    const tags = (driver.pollGroups?.() ?? []).flatMap((g) => g.tags);
    if (tags.length === 0) return;
    this.options.onSamples(
      tags.map((tag) => ({
        device: driver.id,
        tag,
        value: null,
        quality: "bad",
        reason,
        readTime,
      })),
    );
  }

  private observe(report: Omit<PollReport, "endedAt">): void {
    const { onPoll, log } = this.options;
    if (!onPoll) return;
    try {
      onPoll({ ...report, endedAt: Date.now() });
    } catch (err) {
      log.warn({ err }, "poll observer threw");
    }
  }

  private report(status: DeviceStatus): void {
    this.options.onStatus?.(status);
  }

  private async pause(ms: number): Promise<void> {
    try {
      await sleep(ms, this.stopper.signal);
    } catch {
      // stopping
    }
  }
}
