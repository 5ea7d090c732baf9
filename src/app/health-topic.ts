/**
 * The retained health message: every `http.health.topic_interval` (30 s by default) the health
 * summary of /healthz is published, QoS 1 and retained, on the gateway status topic with
 * `/health` appended: by default `<base>/<site>/status/<gateway id>/health`, next to the
 * gateway's retained online/offline status `<base>/<site>/status/<gateway id>`.
 *
 * It is not an event: plain JSON (no CloudEvents envelope, no `type`), never journaled, never
 * re-sent. While the broker is away the tick is skipped, so a stale retained message is read
 * together with the gateway status topic and `checked_at`. stop() clears the timer; a publish
 * in progress ends with the connection.
 */
import type { Logger } from "../lib/logger.ts";
import type { Publisher } from "../publish/index.ts";
import type { HealthSummary } from "./health.ts";

export interface HealthTopicOptions {
  publisher: Pick<Publisher, "connected" | "publishStatus">;
  topic: string;
  intervalMs: number;
  summary: () => HealthSummary;
  log: Logger;
}

export class HealthTopic {
  private readonly options: HealthTopicOptions;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private sent = 0;

  constructor(options: HealthTopicOptions) {
    this.options = options;
  }

  /** Health messages acknowledged by the broker. */
  get published(): number {
    return this.sent;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), this.options.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    const { publisher, topic, log } = this.options;
    if (this.busy || !publisher.connected) return;
    this.busy = true;
    try {
      const payload = JSON.stringify(this.options.summary());
      if (await publisher.publishStatus({ topic, payload, retain: true })) this.sent += 1;
    } catch (err) {
      log.warn({ err }, "health message not published");
    } finally {
      this.busy = false;
    }
  }
}
