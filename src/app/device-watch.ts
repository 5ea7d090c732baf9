/**
 * What the gateway knows about each device's liveness, for /healthz and /metrics: its last
 * reported status and when it entered it, its shortest poll interval, and when it last delivered
 * a good (or uncertain) sample. Fed by the runner's status reports and by the samples on their
 * way to the engine; it only observes and never changes what flows.
 */
import type { TagSample } from "../drivers/types.ts";
import type { DeviceStatus } from "./driver-runner.ts";

export interface DeviceState {
  id: string;
  /** "connecting" until the runner reported anything. */
  status: "connecting" | DeviceStatus["status"];
  /** The runner's error for disconnected or failed. */
  error?: string;
  /** When the status was entered, ms since the epoch. */
  since: number;
  /** The shortest poll interval, ms; undefined for a device that is not polled. */
  intervalMs?: number;
  /** When a good or uncertain sample last arrived, ms since the epoch. */
  lastGoodReadAt?: number;
}

export class DeviceWatch {
  private readonly devices = new Map<string, DeviceState>();

  /** Starts (or restarts, after a reload) watching a device. */
  add(id: string, intervalMs: number | undefined, now: number): void {
    this.devices.set(id, {
      id,
      status: "connecting",
      since: now,
      ...(intervalMs === undefined ? {} : { intervalMs }),
    });
  }

  /** A live reload changed the device's poll groups: its status and reads stay. */
  retime(id: string, intervalMs: number | undefined): void {
    const state = this.devices.get(id);
    if (!state) return;
    if (intervalMs === undefined) delete state.intervalMs;
    else state.intervalMs = intervalMs;
  }

  remove(id: string): void {
    this.devices.delete(id);
  }

  onStatus(id: string, status: DeviceStatus, now: number): void {
    const state = this.devices.get(id);
    if (!state) return;
    if (state.status !== status.status) state.since = now;
    state.status = status.status;
    if (status.status === "connected") delete state.error;
    else state.error = status.error;
  }

  onSamples(samples: readonly TagSample[]): void {
    for (const sample of samples) {
      if (sample.quality !== "good" && sample.quality !== "uncertain") continue;
      const state = this.devices.get(sample.device);
      if (state && (state.lastGoodReadAt ?? 0) < sample.readTime)
        state.lastGoodReadAt = sample.readTime;
    }
  }

  list(): DeviceState[] {
    return [...this.devices.values()].map((d) => ({ ...d }));
  }
}
