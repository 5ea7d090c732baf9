/**
 * The publisher: drains the journal to the broker, in sequence order, with QoS 1.
 *
 * Invariants:
 * - A record is marked published only after its PUBACK. The journal is the only store: each
 *   connection starts draining from the journal's oldest unpublished record, so after a loss
 *   only records sent but not acknowledged are sent again (same id, consumers de-duplicate).
 * - At most min(max_in_flight, the broker's Receive Maximum) records are unacknowledged.
 * - Gateway status times are never claimed before they are true. A connection episode (the
 *   start, or a lost connection) begins by appending status.offline(), stamped then: its
 *   sequence is reserved for the session's online status. Each connect attempt carries
 *   status.will(reserved), composed as the attempt starts, as its retained last will (the
 *   reserved sequence, its own id, stamped with the attempt's start: it cannot know when the
 *   connection will be lost). On CONNACK (`connected` from then on), before any record is
 *   sent, the reserved record is rewritten into status.online(), stamped at the CONNACK, and
 *   awaited durable; then "MQTT connected" is logged and the journal drained, the online
 *   record in sequence order like any other. When the rewrite fails (the size policy dropped the reserved record during
 *   a long outage, or the journal failed) the connection is ended without its will and a new
 *   episode begins. A crash before CONNACK leaves the `offline` record, published later.
 * - Connect failures (refused, unreachable, TLS not verified) are logged with their reason and
 *   retried with full-jitter backoff between reconnect_min and reconnect_max; they never throw.
 *   The backoff resets only after a connection made progress (a PUBACK, or caught up).
 * - One event the broker refuses never stalls the rest (refusals.ts classifies, set-aside.ts
 *   sets aside). A refusal that can never succeed for that event (PUBACK 0x87 not authorized,
 *   0x90 topic name invalid, 0x95 packet too large, 0x99 payload format invalid) sets it
 *   aside: kept in the journal with the reason, never marked published, counted, logged,
 *   announced; delivery goes on with the next record on the same connection. An event whose
 *   PUBLISH is larger than the broker's Maximum Packet Size (CONNACK) or mqtt.max_packet_size
 *   is set aside the same way without being sent. A refusal for now (0x97 quota exceeded)
 *   stops sending: once nothing is in flight, after a backoff, the drain goes back to the
 *   oldest refused record, on the same connection; records the broker took meanwhile stay
 *   published (so a refused-then-retried record arrives after them). A vague refusal (0x80,
 *   0x83...) is retried the same way and sets the record aside after MAX_REFUSALS in a row.
 *   0x91 (packet identifier in use) drops the connection. A connection lost right after a
 *   record that was alone in flight (a DISCONNECT 0x95, or closed with no reason
 *   MAX_REFUSALS connections running, as MQTT 3.1.1 brokers do) names that record; lost with
 *   more in flight, the next connection is careful: one record at a time until a PUBACK
 *   (set-aside.ts has the rules).
 * - stop(): no new records are sent (an open batch the drain holds goes at once), in-flight
 *   PUBACKs are awaited (bounded), status.offline()
 *   is appended (stamped then: the gateway sends nothing more) and published, then DISCONNECT
 *   so the broker discards the will. Records still unpublished at that point stay in the
 *   journal, ahead of the offline record, for next time; then the offline record is not sent
 *   out of order: the connection ends with "disconnect with will message" and the broker
 *   publishes the will instead.
 * - Batches (mqtt.batch, batcher.ts says what goes in one): the window counts messages, a batch
 *   as one; a batch's PUBACK acknowledges every record in it. A batch the broker refuses is
 *   never set aside whole: its records are sent again one by one (batches of one), so that
 *   only the event the broker refuses is set aside. Refused by a PUBACK reason code that sets
 *   an event aside or is vague: once nothing is in flight, the drain goes back to it (batches
 *   in flight behind it may arrive first). A connection lost right after a batch that was
 *   alone in flight: the next connection sends its records one at a time (careful until one
 *   after them is acknowledged), so that the rules above name the event. Lost with more in
 *   flight: careful as for records, one message (a whole batch) at a time until a PUBACK.
 * - publishStatus() sends a message that is not an event (the health summary) straight to the
 *   current connection, QoS 1, never journaled and never retried: while disconnected or
 *   stopping it is skipped. It counts against the in-flight window like a record does. So does
 *   respond() (an answer to a request on a subscribed topic, with MQTT 5 Correlation Data),
 *   which waits a bounded time for room in the window instead of skipping.
 */
import { GIVE_UP, sleep, withTimeout } from "../lib/abort.ts";
import { Backoff } from "../lib/backoff.ts";
import { errorMessage, GatewayError, isGatewayError } from "../lib/errors.ts";
import { IdSlots } from "../lib/id-slots.ts";
import type { Logger } from "../lib/logger.ts";
import { type Batch, Batcher, isBatch, type Message } from "./batcher.ts";
import {
  type Connection,
  type Endpoint,
  fromMqttConfig,
  openConnection,
  parseBrokerUrl,
} from "./connection.ts";
import { classifyPuback, oversize, type PacketLimit, packetLimit } from "./refusals.ts";
import { SetAsideKeeper } from "./set-aside.ts";
import { topicMatches } from "./topic-filter.ts";
import type {
  MessageHandler,
  MessageProperties,
  OutboundMessage,
  OutboundRecord,
  PublisherOptions,
  PublisherStats,
  ResponseMessage,
  Subscription,
} from "./types.ts";
import { Wakeup } from "./wakeup.ts";

/** A message sent and not acknowledged yet: when, and its first sequence. */
interface InFlight {
  message: Message;
  at: number;
  sequence: bigint;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** "connect to … failed: Connection refused: Not authorized": the message and its causes. */
function withCauses(err: unknown): string {
  const parts: string[] = [];
  for (let e = err; e !== undefined && parts.length < 5; e = (e as { cause?: unknown }).cause)
    parts.push(errorMessage(e));
  return parts.join(": ");
}

/** The record a refusal or a lost connection is about: a batch of one names its record. */
function suspectOf(message: Message): OutboundRecord {
  if (!isBatch(message)) return message;
  // the batch topic, which the broker refused: the set-aside notice names it
  return { ...message.records[0]!, topic: message.topic };
}

export class Publisher {
  /** Topic filters the gateway listens to; subscribed again on every new session. */
  readonly subscriptions: Subscription[] = [];
  private readonly options: PublisherOptions;
  private readonly log: Logger;
  private readonly endpoint: Endpoint;
  private readonly backoff: Backoff;
  private readonly stopper = new AbortController();
  /** Notified by every PUBACK, and by everything `stirred` is: room in the window. */
  private readonly wakeup = new Wakeup();
  /**
   * Notified by all but a plain PUBACK (a close, stop(), a refusal, a set-aside): what a drain
   * with nothing to send waits for beside the journal. Woken by every PUBACK, such a drain
   * went round once per PUBACK for nothing (issue 12: a tenth of the gateway's allocations).
   */
  private readonly stirred = new Wakeup();
  /**
   * Messages sent on the current connection and not yet acknowledged, each in a slot of its own
   * (IdSlots: not a Map, whose churn of tables moved every record in flight to V8's old
   * generation). `sequence`: the message's first.
   */
  private readonly inFlight: IdSlots<InFlight>;
  /** Refused records not set aside wait from here for a retry on the same connection. */
  private retryFrom: bigint | undefined;
  /** The retry waits a backoff first (a refusal for now; not a refused batch taken apart). */
  private retryPause = false;
  /** Records up to here go in batches of one: a batch with them in it was refused. */
  private singlyUpTo = 0n;
  /** `careful` lasts until a record above this is acknowledged (a lost batch's events). */
  private carefulUpTo = 0n;
  /** The current connection's batcher and window (sendHeld()). */
  private held: { batcher: Batcher; window: number } | undefined;
  private readonly refusalBackoff: Backoff;
  private readonly keeper: SetAsideKeeper;
  /** The connection the gateway itself dropped (not the broker's doing). */
  private ownClose: Connection | undefined;
  private limit: PacketLimit | undefined;
  /** One record at a time until a PUBACK: a lost connection then names its record. */
  private careful = false;
  /** publishStatus() messages sent and not yet acknowledged. */
  private direct = 0;
  /** A connection that closed with a publishStatus() message unacknowledged. */
  private statusLostWith: Connection | undefined;
  private runner: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  private stopping = false;
  private conn: Connection | undefined;
  private progress = false;
  private highestSent = 0n;
  private acked: bigint[] = [];
  private published = 0;
  private resent = 0;
  private connects = 0;
  private lastError: string | undefined;
  private protocolVersion: 4 | 5 = 5;
  private readonly fromConfig: ReturnType<typeof fromMqttConfig>;
  private lastLoggedError: string | undefined;

  constructor(options: PublisherOptions) {
    this.fromConfig = fromMqttConfig(options.mqtt);
    this.inFlight = new IdSlots(options.mqtt.max_in_flight + 64);
    this.options = options;
    this.endpoint = parseBrokerUrl(options.mqtt.url);
    this.log = options.log.child({ url: this.endpoint.display });
    this.backoff = new Backoff({
      baseMs: options.mqtt.reconnect_min,
      maxMs: Math.max(options.mqtt.reconnect_min, options.mqtt.reconnect_max),
      ...(options.random ? { random: options.random } : {}),
    });
    this.refusalBackoff = new Backoff({
      baseMs: options.mqtt.reconnect_min,
      maxMs: Math.max(options.mqtt.reconnect_min, options.mqtt.reconnect_max),
      ...(options.random ? { random: options.random } : {}),
    });
    this.keeper = new SetAsideKeeper({
      journal: options.journal,
      status: options.status,
      log: this.log,
    });
  }

  /** Starts connecting and draining in the background. */
  start(): void {
    if (this.runner) return;
    this.runner = this.run().catch((err: unknown) => {
      this.log.error({ err }, "MQTT publisher ended unexpectedly");
    });
  }

  get connected(): boolean {
    return this.conn?.open === true;
  }

  stats(): PublisherStats {
    return {
      inFlight: this.inFlight.size,
      published: this.published,
      resent: this.resent,
      reconnects: Math.max(0, this.connects - 1),
      setAside: this.keeper.stats(),
      connected: this.connected,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /**
   * Publishes a message outside the journal (QoS 1) on the current connection. Resolves true
   * on its PUBACK; false when there is no connection, the publisher is stopping, the window is
   * full, or the message was not acknowledged. Never throws.
   */
  async publishStatus(message: OutboundMessage): Promise<boolean> {
    const conn = this.conn;
    if (!conn?.open || this.stopping) return false;
    const window = this.windowOf(conn);
    if (this.inFlight.size + this.direct >= window) return false;
    const tooLarge = oversize(message, conn.protocolVersion, this.limit);
    if (tooLarge !== undefined) {
      this.log.debug({ topic: message.topic, reason: tooLarge }, "MQTT status message not sent");
      return false;
    }
    return this.sendDirect(conn, message.topic, "MQTT status message", () =>
      conn.publish(message.topic, message.payload, message.retain),
    );
  }

  /**
   * Sends an answer to a request (QoS 1, never retained, with its Correlation Data) on the
   * current connection, never journaled, never retried. It takes a place in the in-flight
   * window like publishStatus(): when the window is full it waits for room, at most
   * timeoutMs. Resolves true on its PUBACK; false when not connected, stopping, no room came
   * in time, or it was not acknowledged. Never throws.
   */
  async respond(message: ResponseMessage, timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let conn: Connection;
    for (;;) {
      if (!this.conn?.open || this.stopping) return false;
      conn = this.conn;
      const window = this.windowOf(conn);
      if (this.inFlight.size + this.direct < window) break;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await withTimeout(this.wakeup.wait(), left, () => new Error("timeout")).catch(() => {});
    }
    return this.sendDirect(conn, message.topic, "MQTT answer", () => conn.respond(message));
  }

  /** The in-flight window on `conn`: max_in_flight, at most the broker's Receive Maximum. */
  private windowOf(conn: Connection): number {
    return Math.min(this.options.mqtt.max_in_flight, conn.receiveMaximum);
  }

  /**
   * One message outside the journal (publishStatus, respond), holding a place in the window
   * while it waits for its PUBACK: true once acknowledged, false otherwise (`what` not
   * published, at debug). Never throws.
   */
  private async sendDirect(
    conn: Connection,
    topic: string,
    what: string,
    send: () => Promise<void>,
  ): Promise<boolean> {
    this.direct += 1;
    try {
      await send();
      return true;
    } catch (err) {
      if (!conn.open) this.statusLostWith = conn; // for judgeLoss, which runs after this
      this.log.debug({ err, topic }, `${what} not published`);
      return false;
    } finally {
      this.direct -= 1;
      this.rouse();
    }
  }

  /** Listens to a topic filter from now on, on this and every later session. */
  subscribe(filter: string, onMessage: MessageHandler): void {
    this.subscriptions.push({ filter, onMessage });
    const conn = this.conn;
    if (conn?.open) void this.subscribeOn(conn, [filter]);
  }

  /** Stops cleanly within about timeoutMs (see the header). Idempotent; never throws. */
  stop(timeoutMs = 5000): Promise<void> {
    if (!this.runner) return Promise.resolve();
    this.stopped ??= this.shutdown(timeoutMs);
    return this.stopped;
  }

  private async run(): Promise<void> {
    const { journal, status } = this.options;
    const signal = this.stopper.signal;
    let lost = false;
    while (!this.stopping) {
      const reserved = await this.reserve(signal);
      if (!reserved) return;
      if (lost) await this.pause(signal);
      const conn = await this.connect(reserved, signal);
      if (!conn) return;
      const online = status.online(); // the session is established: its time is now
      if (this.stopping) {
        // stop() came while the connection was being opened: it did not see it.
        await conn.end(1000);
        return;
      }
      this.conn = conn;
      this.connects += 1;
      this.progress = false;
      this.retryFrom = undefined;
      this.retryPause = false;
      this.limit = packetLimit(this.options.mqtt, conn.maximumPacketSize);
      void conn.closed.then(() => this.rouse());
      try {
        // Durable before anything is sent: what goes out under this id is what a crash keeps.
        await journal.replace(reserved.sequence, online);
      } catch (err) {
        // The reserved record is gone (the size policy dropped it during a long outage) or the
        // journal failed: this session's will would stand for nothing. DISCONNECT (the broker
        // discards the will) and start a new episode.
        this.noteError(err, "cannot record the online status in the journal");
        if (this.stopping) return; // stop() finishes with this connection
        this.conn = undefined;
        await conn.end(1000);
        lost = true;
        continue;
      }
      if (this.stopping) return; // stop() finishes with this connection
      const window = this.windowOf(conn);
      this.log.info(
        {
          clientId: this.options.clientId,
          window,
          receiveMaximum: conn.receiveMaximum,
          ...(this.limit ? { maxPacketSize: this.limit.bytes } : {}),
        },
        "MQTT connected",
      );
      // the problem is over: the next one's first error is a warning, whatever its words
      this.lastLoggedError = undefined;
      if (this.subscriptions.length > 0)
        void this.subscribeOn(
          conn,
          this.subscriptions.map((s) => s.filter),
        );
      try {
        await this.drain(conn, window);
      } catch (err) {
        // The journal failed to read: drop this connection, retry after backoff.
        this.noteError(err, "cannot read unpublished records from the journal");
        this.ownClose = conn;
        conn.destroy(err instanceof Error ? err : new Error(String(err)));
      }
      if (this.stopping) return; // stop() finishes with this connection
      const why = await conn.closed;
      this.conn = undefined;
      this.judgeLoss(conn);
      this.inFlight.takeAll();
      this.noteError(why, "MQTT connection lost");
      if (this.progress) this.backoff.reset();
      lost = true;
    }
  }

  /**
   * Starts an episode: appends an `offline` status (true now: not connected), whose sequence
   * the session's online status takes later. Retries after backoff; undefined once stopping.
   */
  private async reserve(signal: AbortSignal): Promise<OutboundRecord | undefined> {
    const { journal, status } = this.options;
    while (!this.stopping) {
      try {
        const [reserved] = await journal.append([status.offline()]);
        if (reserved) return reserved;
      } catch (err) {
        this.noteError(err, "cannot append the gateway status to the journal");
      }
      await this.pause(signal);
    }
    return undefined;
  }

  /** Connect attempts of one episode, until one succeeds or stop() aborts. */
  private async connect(
    reserved: OutboundRecord,
    signal: AbortSignal,
  ): Promise<Connection | undefined> {
    const { clientId, status } = this.options;
    while (!signal.aborted) {
      this.log.debug({ sequence: String(reserved.sequence) }, "MQTT connecting");
      // Composed as the attempt starts: the will can only say when its session began.
      const will = status.will(reserved);
      try {
        return await openConnection(
          {
            endpoint: this.endpoint,
            clientId,
            ...this.fromConfig,
            protocolVersion: this.protocolVersion,
            connectTimeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
            will: { topic: will.topic, payload: will.payload, retain: will.retain },
            onMessage: (topic, payload, properties) => this.dispatch(topic, payload, properties),
            ...(this.options.ackHoldMs === undefined ? {} : { ackHoldMs: this.options.ackHoldMs }),
          },
          signal,
        );
      } catch (err) {
        if (isGatewayError(err, "ABORTED")) return undefined;
        if (this.protocolVersion === 5 && /unacceptable protocol version/i.test(withCauses(err))) {
          // Brokers without MQTT 5 (aedes, old mosquitto): fall back to 3.1.1, where a publish
          // the broker's ACL drops is still acknowledged, so it cannot be noticed here.
          this.protocolVersion = 4;
          this.log.info({}, "the broker refuses MQTT 5; using MQTT 3.1.1");
          continue;
        }
        this.noteError(err, "MQTT connect failed");
        await this.pause(signal);
      }
    }
    return undefined;
  }

  /** Sends unpublished records in order while the connection lasts and stop() was not called. */
  private async drain(conn: Connection, window: number): Promise<void> {
    const { journal } = this.options;
    const batcher = new Batcher(journal, this.options.mqtt.batch);
    this.held = { batcher, window };
    try {
      // Refill in chunks rather than per PUBACK: fewer journal queries at full speed.
      const refillAt = Math.max(1, Math.floor(window / 4));
      while (conn.open && !this.stopping) {
        if (this.retryFrom !== undefined) {
          // a refusal: let what is in flight settle, (pause,) go back to the oldest refused
          if (this.inFlight.size > 0) {
            await this.wakeup.wait();
            continue;
          }
          if (this.retryPause) await this.refusalPause(conn);
          batcher.rewind(this.retryFrom - 1n);
          this.retryFrom = undefined;
          this.retryPause = false;
          continue;
        }
        const room = (this.careful ? 1 : window) - this.inFlight.size - this.direct;
        if (room < refillAt && (this.inFlight.size > 0 || this.direct > 0)) {
          // records wait for room: PUBACKs are read as they come, not held (ack-filter.ts)
          const behind = batcher.ready > 0 || journal.lastSequence() > batcher.cursor;
          const release = behind ? conn.hurryAcks() : undefined;
          await this.wakeup.wait(); // a PUBACK, the close or stop()
          release?.();
          continue;
        }
        const messages = batcher.take({
          max: room,
          singlyUpTo: this.singlyUpTo,
          limit: this.limit,
          protocolVersion: conn.protocolVersion,
        });
        this.sendAll(conn, messages);
        if (messages.length > 0) continue;
        if (this.inFlight.size === 0 && !batcher.holding) this.progress = true; // caught up
        // Nothing unpublished above the cursor: what lies between it and the last sequence was
        // published or skipped as corrupt. Waiting from there, not from the cursor, is what
        // keeps this loop from spinning on a skipped record.
        batcher.skipTo(journal.lastSequence());
        await this.waitForAppend(batcher.cursor, batcher.dueIn());
      }
    } finally {
      this.held = undefined; // stop() took what it held already (sendHeld)
    }
  }

  private sendAll(conn: Connection, messages: readonly Message[]): void {
    for (const message of messages) {
      const tooLarge = oversize(message, conn.protocolVersion, this.limit);
      if (tooLarge === undefined) this.send(conn, message);
      else this.setAside(message, tooLarge);
    }
  }

  /**
   * At stop: what the drain read and holds (an open batch waiting for its delay) goes now,
   * as far as the window allows, so that a clean stop is not held up by it (shutdown()).
   */
  private sendHeld(conn: Connection): void {
    const held = this.held;
    if (held === undefined || this.retryFrom !== undefined) return;
    const room = (this.careful ? 1 : held.window) - this.inFlight.size - this.direct;
    if (room > 0) this.sendAll(conn, held.batcher.flush(room));
  }

  /** Waits for a new record, a PUBACK, the close or stop(), whichever comes first. */
  private async waitForAppend(after: bigint, timeoutMs?: number): Promise<void> {
    const waiting = new AbortController();
    const appended = this.options.journal
      .waitForAppend(after, waiting.signal)
      .catch(() => undefined);
    const waits = [appended, this.stirred.wait(waiting.signal)];
    // an open batch falls due (batcher.ts)
    if (timeoutMs !== undefined) waits.push(sleep(timeoutMs, waiting.signal).catch(() => {}));
    await Promise.race(waits);
    waiting.abort(GIVE_UP);
  }

  /**
   * A slot for a message sent. The window keeps to max_in_flight, for which there are slots
   * enough; should that ever change, the table grows rather than lose a message's slot.
   */
  private sending(sent: InFlight): number {
    const slot = this.inFlight.add(sent);
    if (slot !== undefined) return slot;
    this.inFlight.grow(this.inFlight.capacity * 2);
    return this.inFlight.add(sent)!;
  }

  private send(conn: Connection, message: Message): void {
    if (isBatch(message)) {
      this.sendBatch(conn, message);
      return;
    }
    const { sequence, topic } = message;
    const sent = { message, at: Date.now(), sequence };
    const slot = this.sending(sent);
    if (sequence <= this.highestSent) this.resent += 1;
    else this.highestSent = sequence;
    conn.send(topic, message.payload, message.retain, (err) => {
      if (err === undefined) {
        this.inFlight.take(slot, sent);
        this.ack(sequence);
        return;
      }
      // the connection closed: run() judges the loss by what is in flight, then clears it
      if (!isGatewayError(err, "MQTT_PUBLISH")) return;
      this.inFlight.take(slot, sent);
      this.refused(conn, message, err);
    });
  }

  /** Like send(): its PUBACK acknowledges every record in it. */
  private sendBatch(conn: Connection, batch: Batch): void {
    const { records } = batch;
    const first = records[0]!.sequence;
    const sent = { message: batch, at: Date.now(), sequence: first };
    const slot = this.sending(sent);
    for (const { sequence } of records) {
      if (sequence <= this.highestSent) this.resent += 1;
      else this.highestSent = sequence;
    }
    conn.send(batch.topic, batch.payload, false, (err) => {
      if (err === undefined) {
        this.inFlight.take(slot, sent);
        for (const { sequence } of records) this.ack(sequence);
        return;
      }
      if (!isGatewayError(err, "MQTT_PUBLISH")) return;
      this.inFlight.take(slot, sent);
      if (records.length > 1) this.refusedBatch(conn, batch, err);
      else this.refused(conn, suspectOf(batch), err);
    });
  }

  /**
   * A PUBACK with a reason code >= 0x80 for a batch of several records: a refusal for now is
   * retried like a record's; any other but 0x91 takes the batch apart (see the header).
   */
  private refusedBatch(conn: Connection, batch: Batch, err: GatewayError): void {
    const code = err.details?.reasonCode;
    const refusal = typeof code === "number" ? classifyPuback(code) : undefined;
    if (refusal?.action === "set_aside" || refusal?.action === "retry_limited") {
      const first = batch.records[0]!.sequence;
      const last = batch.records.at(-1)!.sequence;
      this.log.warn(
        { topic: batch.topic, first: String(first), last: String(last), reason: refusal.text },
        "MQTT broker refused a batch; sending its events one by one",
      );
      if (last > this.singlyUpTo) this.singlyUpTo = last;
      if (this.retryFrom === undefined || first < this.retryFrom) this.retryFrom = first;
      this.rouse();
      return;
    }
    this.refused(conn, suspectOf(batch), err);
  }

  /** A PUBACK with a reason code >= 0x80 for `record` (see the header). */
  private refused(conn: Connection, record: OutboundRecord, err: GatewayError): void {
    const code = err.details?.reasonCode;
    const refusal = typeof code === "number" ? classifyPuback(code) : undefined;
    if (refusal?.action === "set_aside") {
      this.keeper.setAside(record, refusal.class!, `the broker refused it: ${refusal.text}`);
      this.madeProgress();
      return;
    }
    if (refusal?.action === "retry_limited" && this.keeper.refusedAgain(record, code as number)) {
      this.madeProgress();
      return;
    }
    if (refusal?.action === "retry" || refusal?.action === "retry_limited") {
      this.noteError(err, "MQTT broker refused a publish for now; sending it again after a pause");
      if (this.retryFrom === undefined || record.sequence < this.retryFrom)
        this.retryFrom = record.sequence;
      this.retryPause = true;
      this.rouse();
      return;
    }
    this.lastError = withCauses(err);
    this.log.error(
      { err, sequence: record.sequence, topic: record.topic },
      "MQTT broker refused a publish; reconnecting",
    );
    this.ownClose = conn;
    conn.destroy(err);
  }

  /** A message too large for the packet limit (a batch of one, or a single record). */
  private setAside(message: Message, reason: string): void {
    if (isBatch(message)) {
      // batcher.ts cuts batches to fit: only a batch of one can be too large
      for (const record of message.records)
        this.keeper.setAside({ ...record, topic: message.topic }, "packet_too_large", reason);
    } else this.keeper.setAside(message, "packet_too_large", reason);
    this.madeProgress();
  }

  /** The stream moved on (an event set aside counts like a PUBACK). */
  private madeProgress(): void {
    this.progress = true;
    this.rouse();
  }

  /** Waits a backoff after a refusal for now; cut short by the close or stop(). */
  private async refusalPause(conn: Connection): Promise<void> {
    const delayMs = this.refusalBackoff.next();
    this.log.debug({ delayMs }, "MQTT pause after a refusal");
    const done = new AbortController();
    const slept = sleep(delayMs, done.signal).catch(() => undefined);
    const until = Date.now() + delayMs;
    while (conn.open && !this.stopping && Date.now() < until)
      await Promise.race([slept, this.wakeup.wait()]);
    done.abort();
  }

  /** Before the in-flight set is cleared: did the broker drop the connection over a record? */
  private judgeLoss(conn: Connection): void {
    let oldest: InFlight | undefined;
    let first = 0n;
    let records = 0;
    for (const sent of this.inFlight.values()) {
      if (oldest === undefined || sent.sequence < first) {
        oldest = sent;
        first = sent.sequence;
      }
      records += isBatch(sent.message) ? sent.message.records.length : 1;
    }
    const disconnectCode = conn.disconnectCode;
    const statusInFlight = this.direct > 0 || this.statusLostWith === conn;
    const careful = this.keeper.lost({
      ...(oldest ? { suspect: suspectOf(oldest.message), sentAt: oldest.at } : {}),
      inFlight: records,
      now: Date.now(),
      ...(disconnectCode === undefined ? {} : { disconnectCode }),
      statusInFlight,
      ours: this.ownClose === conn,
    });
    if (careful && !this.careful)
      this.log.info({}, "MQTT connection lost right after sending: one record at a time for now");
    this.careful ||= careful;
    const batch = oldest?.message;
    if (!careful || this.inFlight.size > 1 || statusInFlight || batch === undefined) return;
    if (!isBatch(batch) || batch.records.length < 2) return;
    // Lost right after a batch of several alone in flight: one of its events is the cause.
    // They go one by one, one at a time, so that the next loss names its event.
    const last = batch.records.at(-1)!.sequence;
    if (last > this.singlyUpTo) this.singlyUpTo = last;
    if (last > this.carefulUpTo) this.carefulUpTo = last;
    this.log.info(
      { topic: batch.topic, first: String(first), last: String(last) },
      "MQTT connection lost right after a batch: sending its events one by one",
    );
  }

  /** Wakes every waiter: those waiting for room and a drain with nothing to send. */
  private rouse(): void {
    this.wakeup.notify();
    this.stirred.notify();
  }

  private ack(sequence: bigint): void {
    this.published += 1;
    this.progress = true;
    this.keeper.acknowledged(sequence);
    if (sequence >= this.carefulUpTo) this.careful = false;
    if (this.retryFrom === undefined) this.refusalBackoff.reset();
    this.acked.push(sequence);
    if (this.acked.length === 1) queueMicrotask(() => this.flushAcks());
    this.wakeup.notify(); // not `stirred`: a PUBACK gives a drain with nothing to send no work
  }

  /** One markPublished per burst of PUBACKs. */
  private flushAcks(): void {
    if (this.acked.length === 0) return;
    const batch = this.acked;
    this.acked = [];
    try {
      this.options.journal.markPublished(batch);
    } catch (err) {
      this.noteError(err, "cannot mark records published in the journal");
    }
  }

  private async subscribeOn(conn: Connection, filters: readonly string[]): Promise<void> {
    for (const filter of filters) {
      try {
        await conn.subscribe(filter);
        this.log.debug({ filter }, "MQTT subscribed");
      } catch (err) {
        if (!conn.open) return;
        this.noteError(err, "MQTT subscribe failed");
      }
    }
  }

  private dispatch(topic: string, payload: Buffer, properties: MessageProperties): void {
    for (const s of this.subscriptions) {
      if (!topicMatches(s.filter, topic)) continue;
      try {
        s.onMessage(topic, payload, properties);
      } catch (err) {
        this.log.error({ err, topic, filter: s.filter }, "MQTT message handler threw");
      }
    }
  }

  /** Logs a failure at warn when its message changed since the last one, else at debug. */
  private noteError(err: unknown, msg: string): void {
    const message = withCauses(err ?? msg);
    this.lastError = message;
    const level = message === this.lastLoggedError ? "debug" : "warn";
    this.lastLoggedError = message;
    this.log[level]({ err, attempt: this.backoff.attempts }, msg);
  }

  private async pause(signal: AbortSignal): Promise<void> {
    const delayMs = this.backoff.next();
    this.log.debug({ delayMs }, "MQTT reconnect delay");
    await sleep(delayMs, signal).catch(() => undefined);
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    const { journal, status } = this.options;
    const deadline = Date.now() + timeoutMs;
    const remaining = () => Math.max(0, deadline - Date.now());
    this.stopping = true;
    const conn = this.conn;
    if (conn?.open) {
      this.sendHeld(conn);
      conn.hurryAcks(); // no held reads while the last PUBACKs are awaited: never released
    }
    this.rouse();
    while (conn?.open && this.inFlight.size > 0 && remaining() > 0) {
      await withTimeout(this.wakeup.wait(), remaining(), () => new Error("timeout")).catch(
        () => undefined,
      );
    }
    if (this.inFlight.size > 0)
      this.log.warn({ inFlight: this.inFlight.size }, "MQTT stop: unacknowledged records kept");
    let offline: OutboundRecord | undefined;
    try {
      [offline] = await journal.append([status.offline()]);
    } catch (err) {
      this.log.error({ err }, "cannot append the offline status to the journal");
    }
    // The offline record must not overtake older records still waiting in the journal: then
    // it stays there, in order, for the next start, and the broker publishes the will now. So
    // it does when the offline record could not be journaled or was not acknowledged: the
    // retained status must not stay "online" while the gateway is gone.
    const backlog =
      offline !== undefined && journal.unpublished(0n, 1)[0]?.sequence !== offline.sequence;
    let sendWill = offline === undefined || backlog;
    if (backlog)
      this.log.warn({}, "MQTT stop: records still unpublished; the broker publishes the last will");
    if (conn?.open && offline && !sendWill) {
      const timeout = () =>
        new GatewayError("MQTT_PUBLISH", `offline status not acknowledged within ${timeoutMs}ms`);
      try {
        await withTimeout(
          conn.publish(offline.topic, offline.payload, offline.retain),
          Math.max(100, remaining()),
          timeout,
        );
        this.ack(offline.sequence);
      } catch (err) {
        sendWill = true;
        this.log.warn(
          { err },
          "MQTT stop: offline status not published; the broker publishes the last will",
        );
      }
    }
    if (conn) await conn.end(Math.max(100, remaining()), { sendWill });
    this.stopper.abort();
    await this.runner;
    this.flushAcks();
    this.conn = undefined;
    this.inFlight.takeAll();
    this.log.info({ published: this.published }, "MQTT publisher stopped");
  }
}
