/**
 * The retained health message: the health summary of /healthz, published QoS 1 and retained
 * on the gateway status topic with `/health` appended: by default
 * `<base>/<site>/status/<gateway id>/health`, next to the gateway's retained online/offline
 * status `<base>/<site>/status/<gateway id>`.
 *
 * When (issue 13.7: the first one came 30 s after the start, and a clean stop left `ok` with
 * an old time):
 * - at once on every new broker connection (the start's first one, and after an outage), then
 *   every `http.health.topic_interval` (30 s by default) while connected; the connection is
 *   looked at every CHECK_MS;
 * - at stop(): a last message `{ "status": "stopped", ... }` replaces it, while the connection
 *   is still there (stop() comes before the publisher stops; it retries while the in-flight
 *   window is full, for at most STOP_TRIES * CHECK_MS).
 *
 * The chain head (issue 14): every health message carries `chain: { sequence, hash }`, the
 * journal's hash chain head when it was made (Journal.chainHead: the last record the publisher
 * was done with, which no replace() can change), so that a copy of it exists outside the edge
 * PC for `plc2mqtt events verify --anchor SEQUENCE:HASH`. Absent while the chain is empty.
 *
 * It is not an event: plain JSON (no CloudEvents envelope, no `type`), never journaled, never
 * re-sent. While the broker is away nothing is published, so a stale retained message is read
 * together with the gateway status topic and `checked_at`. With `mqtt.retain: false` it is
 * published unretained (the connection drops the flag).
 */

import type { JournalChainHead } from "../journal/index.ts";
import type { Logger } from "../lib/logger.ts";
import type { Publisher } from "../publish/index.ts";
import type { HealthSummary } from "./health.ts";
import { chainData } from "./status-events.ts";

/** How often the connection is looked at (a new one gets a health message at once). */
const CHECK_MS = 250;
/** Attempts of the stopped message while the publisher's window is full. */
const STOP_TRIES = 8;

/** The last health message of a gateway that stopped cleanly. */
export interface StoppedHealth {
  status: "stopped";
  reasons: [];
  degraded: [];
  checked_at: string;
  gateway: HealthSummary["gateway"];
}

export interface HealthTopicOptions {
  publisher: Pick<Publisher, "connected" | "publishStatus" | "stats">;
  topic: string;
  intervalMs: number;
  summary: () => HealthSummary;
  /** The journal's chain head (Journal.chainHead), added to every message as `chain`. */
  chain?: () => JournalChainHead | undefined;
  log: Logger;
  now?: () => number;
}

export class HealthTopic {
  private readonly options: HealthTopicOptions;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private sent = 0;
  private stopping: Promise<void> | undefined;
  /** The connection (publisher's connect count) last published on, and when. */
  private last: { session: number; at: number } | undefined;

  constructor(options: HealthTopicOptions) {
    this.options = options;
  }

  /** Health messages acknowledged by the broker. */
  get published(): number {
    return this.sent;
  }

  start(): void {
    if (this.stopping) return;
    this.timer ??= setInterval(() => void this.tick(), Math.min(CHECK_MS, this.options.intervalMs));
    void this.tick();
  }

  /**
   * Stops the ticks and publishes the stopped message while connected. Never throws; resolves
   * once it was acknowledged or given up (a caller need not wait: it is sent at once).
   */
  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopping ??= this.publishStopped();
    return this.stopping;
  }

  private async tick(): Promise<void> {
    const { publisher, intervalMs } = this.options;
    if (this.busy || this.stopping || !publisher.connected) return;
    const now = this.now();
    const session = publisher.stats().reconnects;
    if (this.last?.session === session && now - this.last.at < intervalMs) return;
    this.busy = true;
    try {
      const message = { ...this.options.summary(), ...chainData(this.options.chain?.()) };
      if (await this.publish(JSON.stringify(message))) this.last = { session, at: now };
    } finally {
      this.busy = false;
    }
  }

  private async publishStopped(): Promise<void> {
    const summary = this.options.summary();
    const stopped: StoppedHealth = {
      status: "stopped",
      reasons: [],
      degraded: [],
      checked_at: summary.checked_at,
      gateway: summary.gateway,
    };
    const payload = JSON.stringify({ ...stopped, ...chainData(this.options.chain?.()) });
    for (let tries = 0; tries < STOP_TRIES && this.options.publisher.connected; tries++) {
      if (await this.publish(payload)) return;
      // unref'd: a stopping process never waits for this
      await new Promise((resolve) => setTimeout(resolve, CHECK_MS).unref());
    }
  }

  private async publish(payload: string): Promise<boolean> {
    const { publisher, topic, log } = this.options;
    try {
      const done = await publisher.publishStatus({ topic, payload, retain: true });
      if (done) this.sent += 1;
      return done;
    } catch (err) {
      log.warn({ err }, "health message not published");
      return false;
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
