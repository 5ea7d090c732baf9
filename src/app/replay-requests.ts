/**
 * Replay on request (issue 14): a consumer that was down asks the running gateway for a range
 * over MQTT 5 request/response, on `<base>/<site>/cmd/<gateway id>/replay`.
 *
 * Contract:
 * - Only when mqtt.replay_requests.enabled: then the gateway's own session subscribes to the
 *   cmd topic (Publisher.subscribe); otherwise nothing is subscribed and nothing answers.
 * - A request without a Response Topic (or over MQTT 3.1.1, which has none) is ignored, logged
 *   at most once a minute with how many were held back. Every other request gets one answer on
 *   its Response Topic with its Correlation Data (Publisher.respond: QoS 1, never retained):
 *   `{status: "refused", reason, detail}` (replay-request.ts has the reasons), or
 *   `{status: "accepted", count, from_sequence, to_sequence}` and, when the replay ended,
 *   `{status: "completed", published, skipped}` or `{status: "failed", published, detail}`.
 * - What is replayed is what `plc2mqtt replay` replays (app/replay.ts replayQuery): records the
 *   broker acknowledged, event time in [from, to], the filters, sequence order, each the stored
 *   document with `replay: true` (same id, sequence, time), QoS 1, never retained, on its
 *   original topic; pending and set-aside records are left out. `count` is what matched when
 *   the request was accepted, from_sequence to to_sequence; records published later are not
 *   added (retention may still remove some on the way: `published` then says so).
 * - Bounded work: one replay at a time (another request meanwhile is refused `busy`), at most
 *   max_events per request (more is refused `too_many_events`, nothing sent).
 * - The replay goes out on a connection of its own (publish/replay.ts, client id
 *   `<daemon client id>-replay-request`, no will), never on the daemon's: the live drain keeps
 *   its connection, window and order. Paced by replay-pace.ts (`rate` per second, bursts of
 *   rate/20): the live stream is held back by at most one burst of work at a time.
 * - Nothing of a request is logged but its outcome, the claimed client id and the range: never
 *   its secret. stop() aborts a running replay and waits for it.
 */
import type { GatewayConfig } from "../config/schema/root.ts";
import { formatSequence } from "../events/cloudevent.ts";
import { commandTopic } from "../events/topic.ts";
import { type JournalReader, openJournalReader, type RecordRange } from "../journal/index.ts";
import { errorMessage } from "../lib/errors.ts";
import { RepeatThrottle } from "../lib/log-throttle.ts";
import type { Logger } from "../lib/logger.ts";
import { type MessageProperties, type Publisher, replayRecords } from "../publish/index.ts";
import { daemonClientId, replayQuery } from "./replay.ts";
import { burstOf, paced } from "./replay-pace.ts";
import {
  authorize,
  parseReplayRequest,
  type Refusal,
  type ReplayRequestBody,
} from "./replay-request.ts";

export interface ReplayRequestsOptions {
  config: GatewayConfig;
  publisher: Pick<Publisher, "subscribe" | "respond">;
  log: Logger;
  now?: () => number;
}

const LOG_REPEAT_MS = 60_000;

/** The topic replay requests arrive on, for this config. */
export function replayRequestTopic(config: GatewayConfig): string {
  return commandTopic(
    {
      base: config.mqtt?.base_topic ?? "plc2mqtt",
      site: config.gateway.site,
      gateway: config.gateway.id,
    },
    "replay",
  );
}

export class ReplayRequests {
  readonly topic: string;
  private readonly config: GatewayConfig;
  private readonly publisher: ReplayRequestsOptions["publisher"];
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly throttle = new RepeatThrottle({ intervalMs: LOG_REPEAT_MS });
  private readonly stopper = new AbortController();
  private running: Promise<void> | undefined;

  constructor(options: ReplayRequestsOptions) {
    this.config = options.config;
    this.publisher = options.publisher;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.topic = replayRequestTopic(options.config);
  }

  /** Subscribes, when enabled; returns whether it did. */
  start(): boolean {
    if (!this.config.mqtt?.replay_requests.enabled) return false;
    this.publisher.subscribe(this.topic, (_topic, payload, properties) =>
      this.onRequest(payload, properties),
    );
    this.log.info({ topic: this.topic }, "listening for replay requests");
    return true;
  }

  /** Aborts a running replay and waits for it to end. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.running;
  }

  private onRequest(payload: Buffer, properties: MessageProperties): void {
    const { responseTopic, correlationData } = properties;
    if (responseTopic === undefined) {
      this.warn("no_response_topic", {}, "replay request without a response topic ignored");
      return;
    }
    const answer = (body: Record<string, unknown>) =>
      this.publisher
        .respond({
          topic: responseTopic,
          payload: JSON.stringify(body),
          ...(correlationData === undefined ? {} : { correlationData }),
        })
        .then((sent) => {
          if (!sent)
            this.log.warn(
              { responseTopic, status: body.status },
              "replay request answer not delivered",
            );
        });
    const refuse = (refusal: Refusal, clientId?: string) => {
      this.warn(
        refusal.reason,
        { reason: refusal.reason, ...(clientId === undefined ? {} : { clientId }) },
        "replay request refused",
      );
      return answer({ status: "refused", ...refusal });
    };
    if (this.stopper.signal.aborted) return;
    const parsed = parseReplayRequest(payload, properties.userProperties, this.now());
    if (!parsed.ok) {
      void refuse(parsed);
      return;
    }
    const request = parsed.request;
    const settings = this.config.mqtt!.replay_requests;
    const denied = authorize(request, {
      allowClients: settings.allow_clients,
      ...(settings.secret === undefined ? {} : { secret: settings.secret }),
    });
    if (denied) {
      void refuse(denied, request.clientId);
      return;
    }
    if (this.running) {
      void refuse({ reason: "busy", detail: "a replay is running: ask again when it is done" });
      return;
    }
    let reader: JournalReader;
    let selected: RecordRange;
    try {
      reader = openJournalReader(this.config.gateway.data_dir);
    } catch (err) {
      this.log.error({ err }, "replay request: the journal cannot be read");
      void refuse({ reason: "unavailable", detail: "the journal cannot be read" });
      return;
    }
    try {
      selected = replaySelection(reader, request);
    } catch (err) {
      reader.close();
      this.log.error({ err }, "replay request: the journal cannot be read");
      void refuse({ reason: "unavailable", detail: "the journal cannot be read" });
      return;
    }
    if (selected.count > settings.max_events) {
      reader.close();
      void refuse(
        {
          reason: "too_many_events",
          detail: `${selected.count} events match; at most ${settings.max_events} per request (narrow the range or filters)`,
        },
        request.clientId,
      );
      return;
    }
    this.log.info(
      {
        audit: "replay request",
        ...(request.clientId === undefined ? {} : { clientId: request.clientId }),
        from: new Date(request.from).toISOString(),
        to: new Date(request.to).toISOString(),
        count: selected.count,
      },
      "replay request accepted",
    );
    const run = (async () => {
      try {
        await answer({
          status: "accepted",
          count: selected.count,
          // as the events write them (20 digits): comparable to an event's sequence as text
          from_sequence: selected.first === undefined ? null : formatSequence(selected.first),
          to_sequence: selected.last === undefined ? null : formatSequence(selected.last),
        });
        await answer(
          selected.last === undefined
            ? { status: "completed", published: 0, skipped: 0 }
            : await this.replay(reader, request, selected.last),
        );
      } finally {
        reader.close();
        this.running = undefined;
      }
    })();
    this.running = run.catch((err: unknown) => {
      this.log.error({ err }, "replay request failed");
    });
  }

  /** Sends the selected records (see the header); returns the final answer. */
  private async replay(
    reader: JournalReader,
    request: ReplayRequestBody,
    last: bigint,
  ): Promise<Record<string, unknown>> {
    const mqtt = this.config.mqtt!;
    const { rate } = mqtt.replay_requests;
    const signal = this.stopper.signal;
    let published = 0;
    try {
      const records = paced(
        reader.scan(replayQuery(filterOf(request)), Math.max(20, burstOf(rate))),
        {
          rate,
          stopAfter: last,
          signal,
        },
      );
      const result = await replayRecords(records, {
        mqtt,
        clientId: `${daemonClientId(this.config)}-replay-request`,
        log: this.log,
        signal,
        onProgress: (n) => {
          published = n;
        },
      });
      const skipped = result.skipped + reader.corruptSkipped;
      this.log.info({ published: result.published, skipped }, "replay request done");
      return { status: "completed", published: result.published, skipped };
    } catch (err) {
      this.log.warn({ err, published }, "replay request stopped");
      return { status: "failed", published, detail: errorMessage(err) };
    }
  }

  /** Logs a request problem at most once a minute per kind, with the count held back. */
  private warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const suppressed = this.throttle.check(key, this.now());
    if (suppressed === false) return;
    this.log.warn({ ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, msg);
  }
}

function filterOf(request: ReplayRequestBody) {
  return {
    from: request.from,
    to: request.to,
    ...(request.device === undefined ? {} : { device: request.device }),
    ...(request.tag === undefined ? {} : { subject: request.tag }),
    ...(request.type === undefined ? {} : { type: request.type }),
  };
}

/**
 * How many records match now, and the first and last of them: one aggregate statement (one
 * snapshot, no row decoded, so a corrupt row neither hides the range's ends nor is counted
 * twice as skipped); records published after it (above the last) are left out.
 */
export function replaySelection(reader: JournalReader, request: ReplayRequestBody): RecordRange {
  return reader.range(replayQuery(filterOf(request)));
}
