/**
 * What the publisher sends next: the journal's pending records, read in sequence order, each as
 * a message of its own or, with mqtt.batch on, gathered into batches (issue 12.3).
 *
 * Invariants:
 * - Off (mqtt.batch.classes empty), every record is its own message, handed out as it is:
 *   nothing is added on the path of an unbatched record.
 * - On, every record of a named class (telemetry; quality; event: trigger events) that is not
 *   retained goes out in a batch: one MQTT message, application/cloudevents-batch+json, whose
 *   payload is `[` + the records' stored CloudEvents documents joined by `,` + `]`. The
 *   documents are the journal's, verbatim: each event keeps its own id and sequence, and a
 *   re-send after a loss carries the same ids.
 * - A batch's topic is its records' topic with the last level (the template's {name}; the
 *   config schema requires it last when batching is on) replaced by `_batch`:
 *   `<base>/<site>/<area>/<line>/<equipment>/telemetry/_batch`. Tag, alarm and trigger names
 *   start with a letter or digit, so no event's own topic is ever a batch topic.
 * - Order: a batch is a run of records that follow each other among the pending records, in
 *   sequence order, and share one batch topic (one device, one class). Any other record (another
 *   device or class, a state, a status) ends the run and goes out after it: messages leave in
 *   the sequence order of their records.
 * - Bounds: at most max_events records; the PUBLISH fits the packet limit (the batch is closed
 *   before a record that would not fit); held open at most max_delay after its first record was
 *   read, then sent however few it holds (max_delay 0: what is pending goes at once).
 * - Records up to `singlyUpTo` go in batches of one, each as soon as it is read: the publisher
 *   uses this to find the one event a broker refused in a batch. A batch of one is still a
 *   batch, on the batch topic (consumers of a batched class subscribe to one topic). A batch of
 *   one too large for the limit is handed out as it is: the publisher sets its record aside,
 *   like an oversize single event.
 * - rewind(after) forgets everything read after `after` (held and ready messages included): the
 *   publisher goes back there after a refusal, once nothing is in flight.
 */
import { EVENT_TYPES } from "../events/types.ts";
import { publishPacketSize } from "./publish-packet.ts";
import type { PacketLimit } from "./refusals.ts";
import type { MqttConfig, OutboundRecord, PublisherJournal } from "./types.ts";

/** The last topic level of a batch. */
export const BATCH_LEVEL = "_batch";

/** Most records read from the journal at once while batching. */
const MAX_READ = 8192;

export type BatchClass = MqttConfig["batch"]["classes"][number];

/** Several records in one message. */
export interface Batch {
  topic: string;
  /** `[` + the records' payloads joined by `,` + `]`. */
  payload: string;
  retain: false;
  records: readonly OutboundRecord[];
}

/** What goes out in one PUBLISH: a record as it is stored, or a batch. */
export type Message = OutboundRecord | Batch;

export function isBatch(message: Message): message is Batch {
  return "records" in message;
}

const BUILT_IN: ReadonlySet<string> = new Set(Object.values(EVENT_TYPES));

/**
 * The batch class of an event type: telemetry, quality, or event (a trigger: any type that is
 * not one of the gateway's own); undefined for the classes never batched (state, alarm, status).
 */
export function batchClass(type: string): BatchClass | undefined {
  if (type === EVENT_TYPES.telemetry) return "telemetry";
  if (type === EVENT_TYPES.qualityChanged) return "quality";
  return BUILT_IN.has(type) ? undefined : "event";
}

/** The topic of the batches `topic`'s events go in: its last level replaced by `_batch`. */
export function batchTopic(topic: string): string {
  return `${topic.slice(0, topic.lastIndexOf("/") + 1)}${BATCH_LEVEL}`;
}

/** The batch payload of `records`: their documents verbatim, in a JSON array. */
export function batchPayload(records: readonly OutboundRecord[]): string {
  let payload = "[";
  for (let i = 0; i < records.length; i++) {
    if (i > 0) payload += ",";
    payload += records[i]!.payload;
  }
  return `${payload}]`;
}

export interface TakeOptions {
  /** Most messages to hand out. */
  max: number;
  /** Records up to here go in batches of one. */
  singlyUpTo: bigint;
  limit: PacketLimit | undefined;
  protocolVersion: 4 | 5;
}

interface Open {
  topic: string;
  topicBytes: number;
  records: OutboundRecord[];
  /** UTF-8 bytes of the payloads and the commas between them (counted with a limit only). */
  bytes: number;
  /** When its first record was read (ms). */
  since: number;
}

export class Batcher {
  readonly #journal: Pick<PublisherJournal, "unpublished" | "lastSequence">;
  readonly #classes: ReadonlySet<string>;
  readonly #maxEvents: number;
  readonly #maxDelay: number;
  readonly #now: () => number;
  /** The last sequence read from the journal. */
  #cursor = 0n;
  /** Messages closed and not yet handed out, from #head on. */
  #ready: Message[] = [];
  #head = 0;
  #open: Open | undefined;

  constructor(
    journal: Pick<PublisherJournal, "unpublished" | "lastSequence">,
    settings: MqttConfig["batch"] | undefined,
    now: () => number = Date.now,
  ) {
    this.#journal = journal;
    this.#classes = new Set(settings?.classes ?? []);
    this.#maxEvents = settings?.max_events ?? 1;
    this.#maxDelay = settings?.max_delay ?? 0;
    this.#now = now;
  }

  /** The last sequence read from the journal. */
  get cursor(): bigint {
    return this.#cursor;
  }

  /** Messages closed and not handed out yet. */
  get ready(): number {
    return this.#ready.length - this.#head;
  }

  /** An open batch waits for more records (until dueIn()). */
  get holding(): boolean {
    return this.#open !== undefined;
  }

  /** Milliseconds until the open batch is due, or undefined when none is open. */
  dueIn(): number | undefined {
    const open = this.#open;
    return open === undefined ? undefined : Math.max(0, open.since + this.#maxDelay - this.#now());
  }

  /** Goes back to `after`: everything read past it, held or ready, is read again. */
  rewind(after: bigint): void {
    this.#cursor = after;
    this.#ready = [];
    this.#head = 0;
    this.#open = undefined;
  }

  /** Nothing is pending up to `sequence` (published or skipped): reading goes on after it. */
  skipTo(sequence: bigint): void {
    if (sequence > this.#cursor) this.#cursor = sequence;
  }

  /** What was read and not handed out yet, the open batch closed, at most `max` (no reading). */
  flush(max: number): Message[] {
    this.#close();
    return this.#handOut(max);
  }

  /** The next messages, at most `max`, in order; reads the journal for them. */
  take(options: TakeOptions): Message[] {
    if (this.#classes.size === 0) return this.#read(options.max);
    const now = this.#now();
    while (this.#ready.length - this.#head < options.max) {
      const want = Math.min(
        MAX_READ,
        (options.max - (this.#ready.length - this.#head)) * this.#maxEvents,
      );
      const records = this.#read(want);
      for (const record of records) this.#add(record, options, now);
      if (records.length < want) break;
    }
    const open = this.#open;
    if (open !== undefined && now - open.since >= this.#maxDelay) this.#close();
    return this.#handOut(options.max);
  }

  #handOut(max: number): Message[] {
    const end = Math.min(this.#ready.length, this.#head + max);
    const out = this.#ready.slice(this.#head, end);
    this.#head = end;
    if (this.#head === this.#ready.length) {
      this.#ready = [];
      this.#head = 0;
    }
    return out;
  }

  /**
   * Up to `max` pending records after the cursor. A read that comes back short went through
   * to the end of the journal: the cursor moves to the last sequence, so that the next read
   * never starts below what the journal handed out (journal/drain.ts takes that for a new
   * connection and starts its list of handed-out records afresh from there, leaving out the
   * records in flight below it).
   */
  #read(max: number): OutboundRecord[] {
    const records = this.#journal.unpublished(this.#cursor, max);
    if (records.length > 0) this.#cursor = records.at(-1)!.sequence;
    if (records.length < max) this.skipTo(this.#journal.lastSequence());
    return records;
  }

  #add(record: OutboundRecord, options: TakeOptions, now: number): void {
    const cls = record.retain ? undefined : batchClass(record.type);
    if (cls === undefined || !this.#classes.has(cls)) {
      this.#close();
      this.#ready.push(record);
      return;
    }
    const topic = batchTopic(record.topic);
    if (record.sequence <= options.singlyUpTo) {
      this.#close();
      this.#ready.push({ topic, payload: `[${record.payload}]`, retain: false, records: [record] });
      return;
    }
    const limit = options.limit;
    const bytes = limit === undefined ? 0 : Buffer.byteLength(record.payload);
    const open = this.#open;
    if (open !== undefined && open.topic === topic) {
      if (
        limit === undefined ||
        publishPacketSize(open.topicBytes, open.bytes + 1 + bytes + 2, options.protocolVersion) <=
          limit.bytes
      ) {
        open.records.push(record);
        open.bytes += 1 + bytes;
        if (open.records.length >= this.#maxEvents) this.#close();
        return;
      }
    }
    this.#close();
    this.#open = {
      topic,
      topicBytes: limit === undefined ? 0 : Buffer.byteLength(topic),
      records: [record],
      bytes,
      since: now,
    };
  }

  /** The open batch is ready to go. */
  #close(): void {
    const open = this.#open;
    if (open === undefined) return;
    this.#open = undefined;
    this.#ready.push({
      topic: open.topic,
      payload: batchPayload(open.records),
      retain: false,
      records: open.records,
    });
  }
}
