/**
 * The Driver contract: protocol I/O only. A driver connects, reads (or subscribes) and closes;
 * the runner in app/ owns timers, retries, backoff and device status: it reconnects after a
 * failed connect or a lost connection, and polls again at the next interval. A driver never
 * filters or names topics, never retries a connect, a poll or a read as a whole, and never
 * imports another driver, the engine, the journal or the publisher.
 *
 * One exception belongs to the wire, not the runner: inside one read() call, a single request
 * that got a transient reply (Modbus: exception 5 acknowledge, 6 server device busy, 11 gateway
 * target device failed to respond, or one timeout) may be sent again, bounded by a configured
 * count, with a short backoff, and abortable by the context's signal, before its tags are
 * returned bad. Such repeats are counted in stats().retries. Anything else that fails (the
 * connection, a permanent exception, a repeat that failed too) is returned or thrown for the
 * runner to handle.
 */
import type { DeviceConfig } from "../config/schema/root.ts";
import type { TagSample } from "../events/sample.ts";
import type { Logger } from "../lib/logger.ts";

export type { Quality, TagSample, TagValue } from "../events/sample.ts";

export interface DriverContext {
  /** Aborts the operation in progress (connect, read): shutdown, reload, or a runner timeout. */
  signal: AbortSignal;
  log: Logger;
}

/** One group of tags read together, at its own interval. */
export interface PollGroup {
  /** Milliseconds between polls. */
  interval: number;
  /** The tag names read in this group. */
  tags: readonly string[];
  /**
   * Milliseconds into the interval at which this group's polls fall, counted from when the
   * device's polling starts (Modbus `spread_requests`); 0 or absent: at the start. The first
   * poll is at the start whatever the phase, so that every tag has a value at once.
   */
  phase?: number;
}

export interface Driver {
  /** The configured device id. */
  readonly id: string;
  /** Opens the connection; throws a GatewayError when it cannot (the runner backs off). */
  connect(ctx: DriverContext): Promise<void>;
  /**
   * Polling drivers: the groups of tags and their intervals. The runner calls read() for each
   * group when it comes due.
   */
  pollGroups?(): readonly PollGroup[];
  /**
   * Reads one poll group (all tags when omitted), or any list of the device's tag names given
   * as an ad-hoc group (the runner's snapshot reads at a trigger). Reads from the device now:
   * no cached value (OPC UA: a Read with maxAge 0, with source timestamps). Never throws for a
   * failed request: the tags it covers come back with quality bad and a reason. Throws only
   * when the connection is gone, so that the runner reconnects.
   */
  read?(ctx: DriverContext, group?: PollGroup): Promise<TagSample[]>;
  /**
   * A polling driver that keeps the poll schedule itself (a Modbus device on its own I/O
   * thread): resolves with the group's next poll, taken at the group's fixed rate whatever the
   * caller was doing meanwhile, or rejects as read() would (the connection is gone). The
   * runner calls it again at once, never sleeping in between; polls the caller has not taken
   * yet wait for it, a bounded number (the driver says what it skips beyond them). The
   * schedule ends when the signal of the call that started it aborts.
   */
  nextPoll?(ctx: DriverContext, group: PollGroup): Promise<PolledSamples>;
  /**
   * Subscribing drivers deliver samples as they arrive. A polling driver may deliver here the
   * samples that correct readings it already returned (Modbus: readings put in doubt).
   */
  subscribe?(ctx: DriverContext, onSamples: (samples: TagSample[]) => void): Promise<void>;
  /**
   * A reload changed this device's config. Applies a change of the tag map to the live
   * connection (Modbus: re-plans its reads; OPC UA: adds, modifies and removes monitored items on
   * the existing subscription) and resolves true; resolves false, touching nothing, when the
   * change needs a new connection (endpoint, host, port, security, serial line, unit defaults
   * that change framing): the runner then closes this driver and starts one for the new config.
   * After true, the runner asks pollGroups() again. Never throws for a change it cannot apply:
   * false.
   */
  updateTags?(next: DeviceConfig, ctx: DriverContext): Promise<boolean>;
  /** Counters for /metrics, cumulative since the driver was created. */
  stats?(): DriverStats;
  /** Whether the connection is up (after connect, before a loss or close). */
  readonly connected: boolean;
  /** Idempotent, never throws. */
  close(): Promise<void>;
}

/** One poll a driver with its own schedule took (nextPoll). */
export interface PolledSamples {
  samples: TagSample[];
  /** How long the poll's reads took, ms. */
  durationMs: number;
  /** Polls of the group passed over since the one before: not read (the caller was behind). */
  skipped: number;
}

/** What a driver counts for /metrics. */
export interface DriverStats {
  /** Transient failures (busy, gateway exceptions, a single timeout) retried within a poll. */
  retries: number;
}
