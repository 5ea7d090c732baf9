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
 * - Snapshots at the trigger (issue 8.3): before handing samples to onSamples the runner asks
 *   snapshotTags (the engine's pure query) which tags the triggers these samples fire need;
 *   when any, it reads exactly those tags from the device now (driver.read with an ad-hoc
 *   group: a read from the device, bounded by the driver's request timeout) and delivers the
 *   samples and the reads, marked `snapshotRead`, in ONE onSamples call. A read that throws
 *   or misses a tag gives bad reads with the reason: never an older value.
 * - Deliveries of one runner keep arrival order: each waits behind the previous one (a
 *   promise chain), so subscription samples that arrive during a snapshot read come after it;
 *   a poll loop waits for its own delivery before its next poll; the loss's bad samples come
 *   after every earlier delivery; stop() returns only after the last delivery.
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
  /**
   * The tags of this device to read now, before `samples` are delivered: the snapshot (and
   * context) tags of the triggers they fire. Must not change anything; omitted: none.
   */
  snapshotTags?: (samples: readonly TagSample[]) => readonly string[];
  reconnect: { minMs: number; maxMs: number };
  random?: () => number;
}

export class DriverRunner {
  private readonly options: DriverRunnerOptions;
  private readonly stopper = new AbortController();
  private readonly backoff: Backoff;
  private loop: Promise<void> | undefined;
  /** The last delivery queued: every delivery waits for the one before (arrival order). */
  private delivery: Promise<void> = Promise.resolve();

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
      await this.markAllBad(ctx, reason);
      this.report({ status: "disconnected", error: reason });
      await driver.close();
      await this.pause(this.backoff.next());
    }
    await this.delivery;
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
        if (!ctx.signal.aborted) void this.deliver(ctx, samples);
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
        await this.deliver(ctx, samples);
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

  private async markAllBad(ctx: DriverContext, reason: string): Promise<void> {
    const { driver } = this.options;
    const tags = (driver.pollGroups?.() ?? []).flatMap((g) => g.tags);
    if (tags.length === 0) return;
    await this.deliver(ctx, this.badSamples(tags, reason, Date.now()));
  }

  /** Queues samples for onSamples behind every earlier delivery; resolves once delivered. */
  private deliver(ctx: DriverContext, samples: TagSample[]): Promise<void> {
    this.delivery = this.delivery
      .then(() => this.handOver(ctx, samples))
      .catch((err: unknown) => {
        this.options.log.error({ err }, "sample delivery threw");
      });
    return this.delivery;
  }

  /** Reads the snapshot tags the samples' triggers need, then delivers both in one call. */
  private async handOver(ctx: DriverContext, samples: TagSample[]): Promise<void> {
    const tags = this.options.snapshotTags?.(samples) ?? [];
    if (tags.length === 0) {
      this.options.onSamples(samples);
      return;
    }
    this.options.onSamples([...samples, ...(await this.readAtTrigger(ctx, tags))]);
  }

  /** Reads `tags` from the device now; a tag not read comes back bad with the reason. */
  private async readAtTrigger(ctx: DriverContext, tags: readonly string[]): Promise<TagSample[]> {
    const { driver, log } = this.options;
    let read: TagSample[] = [];
    let failure = "the driver cannot read";
    if (driver.read) {
      try {
        read = await driver.read(ctx, { interval: 0, tags });
        failure = "not returned by the read";
      } catch (err) {
        failure = `snapshot read failed: ${errorMessage(err)}`;
        if (!ctx.signal.aborted) log.warn({ err, tags }, "snapshot read failed");
      }
    }
    const byTag = new Map(read.filter((s) => s.device === driver.id).map((s) => [s.tag, s]));
    const missing = this.badSamples(
      tags.filter((tag) => !byTag.has(tag)),
      failure,
      Date.now(),
    );
    return [...byTag.values(), ...missing].map((s) => ({ ...s, snapshotRead: true }));
  }

  private badSamples(tags: readonly string[], reason: string, readTime: number): TagSample[] {
    return tags.map((tag) => ({
      device: this.options.driver.id,
      tag,
      value: null,
      quality: "bad" as const,
      reason,
      readTime,
    }));
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
