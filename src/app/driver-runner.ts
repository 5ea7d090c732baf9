/**
 * Runs one driver: connects with exponential backoff and full jitter, polls each poll group at
 * its interval, reconnects when the connection is lost, and reports device status. Drivers do
 * protocol I/O only; timers, retries and status live here.
 *
 * Invariants:
 * - Nothing thrown by a driver escapes the loop; the loop ends only by stop().
 * - Poll slots are fixed-rate: a group due every 250 ms is read at 0, 250, 500... from its start;
 *   a read that overruns, or a turn taken late, skips the missed slots instead of bursting to
 *   catch up, and the slots skipped are reported with the next poll (PollReport.skipped).
 * - A driver with nextPoll() keeps the schedule itself (a Modbus device on its own I/O thread):
 *   the runner takes its polls one after the other as they come, never sleeping, and reports
 *   the slots the driver skipped.
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
 * - A live tag-map change (issue 13.3): updateTags(next) asks the driver to apply the new
 *   device config on its live connection, bounded in time. true: the poll groups are asked for
 *   again and restart at once (a read in flight finishes first, never aborted); the
 *   subscription stays; the connection is not touched. false (no updateTags, a change that needs
 *   a new connection, a driver that threw or took too long): nothing changed, the caller
 *   replaces this runner.
 * - What a consumer throws is its own failure, never the device's (issue 13.5): an exception of
 *   onSamples (the engine, the sink) or of snapshotTags (the engine's query) is logged with the
 *   part that threw and the connection stays; samples whose snapshot query threw are delivered
 *   without reads. Only what driver.read or driver.subscribe throws counts as a lost connection.
 * - Deliveries of one runner keep arrival order: each waits behind the previous one (a
 *   promise chain), so subscription samples that arrive during a snapshot read come after it;
 *   a poll loop waits for its own delivery before its next poll; the loss's bad samples come
 *   after every earlier delivery; stop() returns only after the last delivery.
 */
import type { DeviceConfig } from "../config/schema/root.ts";
import type { Driver, DriverContext, PollGroup, TagSample } from "../drivers/types.ts";
import { sleep, withTimeout } from "../lib/abort.ts";
import { Backoff } from "../lib/backoff.ts";
import { type ErrorCode, errorMessage, isGatewayError } from "../lib/errors.ts";
import { nextDue } from "../lib/fixed-rate.ts";
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
  /**
   * Polls of the group passed over just before this one, not read: the one before outlasted
   * its interval, or (a driver with its own schedule) the gateway took its polls late.
   */
  skipped?: number;
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
  /** Aborted to restart the poll groups with the driver's new ones (after updateTags). */
  private regroup: AbortController | undefined;
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

  /**
   * Applies `next` (the same device's new config) on the live connection when the driver can;
   * true when it did (the poll groups restart with the driver's new ones), false when the
   * caller must replace this runner. Never throws; gives up (false) after `timeoutMs`.
   */
  async updateTags(next: DeviceConfig, timeoutMs: number): Promise<boolean> {
    const { driver, log } = this.options;
    if (this.stopped || !driver.updateTags) return false;
    const giveUp = new AbortController();
    const signal = AbortSignal.any([this.stopper.signal, giveUp.signal]);
    let applied: boolean;
    try {
      applied = await withTimeout(
        driver.updateTags(next, { signal, log }),
        timeoutMs,
        () => new Error(`the driver did not apply the new tags within ${timeoutMs} ms`),
        this.stopper.signal,
      );
    } catch (err) {
      giveUp.abort(err);
      log.warn({ err }, "tag update on the live connection failed; reconnecting instead");
      return false;
    }
    if (!applied) return false;
    // reconnect settings are connection settings: a driver that applied the change live kept
    // them, so the backoff stays as it is
    this.regroup?.abort();
    return true;
  }

  /** The device's driver (after a live tag update, its poll groups are the new ones). */
  get driver(): Driver {
    return this.options.driver;
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
      await this.markAllBad(ctx, reason, "DEVICE_CONNECTION_LOST");
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
    const work = [this.pollGroupsWhileConnected(ctx, connection)];
    if (driver.subscribe) work.push(this.subscribeWhileConnected(ctx, connection));
    await Promise.all(work);
  }

  /** Polls the driver's groups; after a live tag update, its new groups (see updateTags). */
  private async pollGroupsWhileConnected(ctx: DriverContext, connection: AbortController) {
    const { driver } = this.options;
    if (!driver.read) return;
    while (!ctx.signal.aborted) {
      const regroup = new AbortController();
      this.regroup = regroup;
      const until = AbortSignal.any([ctx.signal, regroup.signal]);
      const groups =
        driver.pollGroups?.() ?? (driver.subscribe ? [] : [{ interval: 1000, tags: [] }]);
      const ended = new Promise<void>((resolve) => {
        if (until.aborted) resolve();
        else until.addEventListener("abort", () => resolve(), { once: true });
      });
      await Promise.all([...groups.map((g) => this.pollGroup(ctx, g, connection, until)), ended]);
    }
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

  /** One group's fixed-rate polls until the connection ends or `until` (a regroup) fires. */
  private async pollGroup(
    ctx: DriverContext,
    group: PollGroup,
    connection: AbortController,
    until: AbortSignal,
  ) {
    const { driver } = this.options;
    if (driver.nextPoll) return this.takePolls(ctx, group, connection, until);
    let due = performance.now();
    // spread_requests: the first poll at once (every tag has a value from the start), the
    // next at the group's place in the interval
    let phase = group.phase ?? 0;
    /** Poll times passed over since the last poll, reported with the next (metrics). */
    let skipped = 0;
    while (!until.aborted) {
      const started = performance.now();
      // the times that passed while this loop waited for its turn (a busy main thread)
      const waited = Math.floor((started - due) / group.interval);
      if (waited > 0) {
        skipped += waited;
        due += waited * group.interval;
      }
      try {
        const samples = await driver.read!(ctx, group);
        // a read that outlived its runner's stop (a hung device a reload left behind) delivers
        // nothing: its device id may belong to a new runner by now
        if (ctx.signal.aborted) return;
        this.observe({ group, durationMs: performance.now() - started, samples, skipped });
        await this.deliver(ctx, samples);
      } catch (err) {
        if (ctx.signal.aborted || isGatewayError(err, "ABORTED")) return;
        this.readThrew(group, performance.now() - started, err, connection);
        return;
      }
      if (!this.stillConnected(connection)) return;
      // the times this poll ran over
      const now = performance.now();
      ({ due, skipped } = nextDue(due, now, group.interval, phase));
      phase = 0;
      try {
        await sleep(due - now, until);
      } catch {
        return;
      }
    }
  }

  /** A driver that keeps the schedule itself: each poll as it comes, no sleep in between. */
  private async takePolls(
    ctx: DriverContext,
    group: PollGroup,
    connection: AbortController,
    until: AbortSignal,
  ) {
    const { driver } = this.options;
    const polling: DriverContext = { ...ctx, signal: AbortSignal.any([ctx.signal, until]) };
    while (!until.aborted) {
      try {
        const poll = await driver.nextPoll!(polling, group);
        if (ctx.signal.aborted) return;
        this.observe({
          group,
          durationMs: poll.durationMs,
          samples: poll.samples,
          skipped: poll.skipped,
        });
        await this.deliver(ctx, poll.samples);
      } catch (err) {
        if (ctx.signal.aborted || until.aborted || isGatewayError(err, "ABORTED")) return;
        this.readThrew(group, 0, err, connection);
        return;
      }
      if (!this.stillConnected(connection)) return;
    }
  }

  /** A read threw: observed, logged, and the connection treated as lost. */
  private readThrew(
    group: PollGroup,
    durationMs: number,
    err: unknown,
    connection: AbortController,
  ): void {
    this.observe({ group, durationMs, error: err });
    this.options.log.error({ err }, "driver read threw; treating the connection as lost");
    connection.abort();
  }

  /** After a poll: whether the driver still says it is connected (else the connection ends). */
  private stillConnected(connection: AbortController): boolean {
    if (this.options.driver.connected) return true;
    connection.abort();
    return false;
  }

  private async markAllBad(ctx: DriverContext, reason: string, code: ErrorCode): Promise<void> {
    const { driver } = this.options;
    const tags = (driver.pollGroups?.() ?? []).flatMap((g) => g.tags);
    if (tags.length === 0) return;
    await this.deliver(ctx, this.badSamples(tags, reason, code, Date.now()));
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

  /**
   * Reads the snapshot tags the samples' triggers need, then delivers both in one call. What the
   * engine or the sink throws is theirs: logged as such, and the connection stays.
   */
  private async handOver(ctx: DriverContext, samples: TagSample[]): Promise<void> {
    const { log } = this.options;
    let tags: readonly string[] = [];
    try {
      tags = this.options.snapshotTags?.(samples) ?? [];
    } catch (err) {
      log.error(
        { err, part: "engine" },
        "snapshot query threw; samples delivered without snapshot reads",
      );
    }
    const reads = tags.length === 0 ? [] : await this.readAtTrigger(ctx, tags);
    try {
      this.options.onSamples(reads.length === 0 ? samples : [...samples, ...reads]);
    } catch (err) {
      log.error(
        { err, part: "samples consumer" },
        "samples not taken: the engine or the sink threw, not the device; the connection stays",
      );
    }
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
      "SNAPSHOT_READ",
      Date.now(),
    );
    return [...byTag.values(), ...missing].map((s) => ({ ...s, snapshotRead: true }));
  }

  private badSamples(
    tags: readonly string[],
    reason: string,
    reasonCode: ErrorCode,
    readTime: number,
  ): TagSample[] {
    return tags.map((tag) => ({
      device: this.options.driver.id,
      tag,
      value: null,
      quality: "bad" as const,
      reason,
      reasonCode,
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
