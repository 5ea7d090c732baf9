/**
 * What the gateway knows about each device's liveness, for /healthz and /metrics: its last
 * reported status and when it entered it, its shortest poll interval, when it last delivered a
 * good (or uncertain) sample, and its driver's retries. Fed by the runner's status reports and
 * by the samples on their way to the engine; it only observes and never changes what flows.
 *
 * Status reports are told apart (onStatus's answer): a report that repeats the device's status
 * and error text (every failed reconnect says `failed` with the same reason again) is no change,
 * and the gateway publishes no device.status event for it (issue 13.1). Error texts are kept on
 * one line (oneLine).
 *
 * Retries are read from the driver at every list() (a scrape), and stay monotonic per device id:
 * when a reload replaces a device's driver (remove, then add), the old driver's count is carried.
 */
import type { DriverStats, TagSample } from "../drivers/types.ts";
import { oneLine } from "../lib/errors.ts";
import type { DeviceStatus } from "./driver-runner.ts";

export interface DeviceState {
  id: string;
  /** "connecting" until the runner reported anything. */
  status: "connecting" | DeviceStatus["status"];
  /** The runner's error for disconnected or failed, on one line. */
  error?: string;
  /** When the status was entered, ms since the epoch. */
  since: number;
  /** The shortest poll interval, ms; undefined for a device that is not polled. */
  intervalMs?: number;
  /** When a good or uncertain sample last arrived, ms since the epoch. */
  lastGoodReadAt?: number;
  /** Transient failures the driver retried within a poll (since start); undefined: not counted. */
  retries?: number;
}

interface Watched {
  state: DeviceState;
  stats: (() => DriverStats | undefined) | undefined;
}

export class DeviceWatch {
  private readonly devices = new Map<string, Watched>();
  /** Retries of drivers a reload replaced or removed, by device id. */
  private readonly retired = new Map<string, number>();

  /**
   * Starts (or restarts, after a reload) watching a device; `stats` reads its driver's counters
   * (Driver.stats) when it has any.
   */
  add(
    id: string,
    intervalMs: number | undefined,
    now: number,
    stats?: () => DriverStats | undefined,
  ): void {
    this.retire(id);
    this.devices.set(id, {
      state: {
        id,
        status: "connecting",
        since: now,
        ...(intervalMs === undefined ? {} : { intervalMs }),
      },
      stats,
    });
  }

  /** A live reload changed the device's poll groups: its status and reads stay. */
  retime(id: string, intervalMs: number | undefined): void {
    const state = this.devices.get(id)?.state;
    if (!state) return;
    if (intervalMs === undefined) delete state.intervalMs;
    else state.intervalMs = intervalMs;
  }

  remove(id: string): void {
    this.retire(id);
    this.devices.delete(id);
  }

  /**
   * Records a status report. Returns whether it is news: false when the device already had this
   * status with this error text (a repeat to leave unpublished); true for a device not watched
   * (removed: its last word is always news).
   */
  onStatus(id: string, status: DeviceStatus, now: number): boolean {
    const watched = this.devices.get(id);
    if (!watched) return true;
    const { state } = watched;
    const error = status.status === "connected" ? undefined : oneLine(status.error);
    if (state.status === status.status && state.error === error) return false;
    if (state.status !== status.status) state.since = now;
    state.status = status.status;
    if (error === undefined) delete state.error;
    else state.error = error;
    return true;
  }

  onSamples(samples: readonly TagSample[]): void {
    for (const sample of samples) {
      if (sample.quality !== "good" && sample.quality !== "uncertain") continue;
      const state = this.devices.get(sample.device)?.state;
      if (state && (state.lastGoodReadAt ?? 0) < sample.readTime)
        state.lastGoodReadAt = sample.readTime;
    }
  }

  list(): DeviceState[] {
    return [...this.devices.values()].map(({ state }) => {
      const retries = this.retries(state.id);
      return { ...state, ...(retries === undefined ? {} : { retries }) };
    });
  }

  private retries(id: string): number | undefined {
    const now = this.devices.get(id)?.stats?.()?.retries;
    const before = this.retired.get(id);
    if (now === undefined && before === undefined) return undefined;
    return (before ?? 0) + (now ?? 0);
  }

  /** Folds the current driver's retries into the device's carried count. */
  private retire(id: string): void {
    const watched = this.devices.get(id);
    if (!watched) return;
    const n = watched.stats?.()?.retries;
    if (n !== undefined && n > 0) this.retired.set(id, (this.retired.get(id) ?? 0) + n);
    watched.stats = undefined;
  }
}
