/**
 * Setting an event aside: what the publisher does with an event the broker refused for good,
 * so that one refused event never stalls the rest (refusals.ts says which refusals count).
 *
 * Invariants:
 * - A record is set aside only for a refusal of that record: a PUBACK reason code that can
 *   never succeed for it, its size over the packet limit (checked before sending, so it never
 *   goes out), the same vague PUBACK refusal MAX_REFUSALS times running, or a lost connection
 *   that can only be about it.
 * - A lost connection blames a record only when that record was the one thing in flight: no
 *   other record and no status message unacknowledged, sent at most RIGHT_AFTER_MS before,
 *   and the gateway did not drop the connection itself. Then a DISCONNECT naming a packet
 *   problem (0x90 topic name invalid, 0x95 packet too large, 0x99 payload format invalid) sets
 *   it aside at once; a close with no DISCONNECT (MQTT 3.1.1 has none) counts, and the
 *   MAX_REFUSALS-th such close running sets it aside. A broker may process pipelined publishes
 *   out of step with its acknowledgements (aedes does: the PUBACK of the record before the
 *   refused one may never leave), so with more than one thing in flight nothing is blamed:
 *   the next connection is `careful` instead, sending one record at a time until a PUBACK
 *   comes, so that the next such close names its record.
 * - Setting aside is journal.setAside(): the record is kept, with the reason, and is done for
 *   the drain. Then it is counted (stats, by bounded class), logged at warn once per topic
 *   (debug after that), and announced by a plc2mqtt.delivery.set_aside event appended to the
 *   journal, published in order like any event. The announcement of a set-aside announcement
 *   is not made (a broker refusing the status topic would otherwise loop).
 */
import { EVENT_TYPES } from "../events/types.ts";
import type { Logger } from "../lib/logger.ts";
import { MAX_REFUSALS, reasonText, type SetAsideClass } from "./refusals.ts";
import type { OutboundRecord, PublisherJournal, PublisherStatus, SetAsideNotice } from "./types.ts";

/** A connection closed this long after the suspect was sent is not "right after" it. */
export const RIGHT_AFTER_MS = 10_000;
/** Topics remembered for "logged once per topic"; past this the memory starts again. */
const MAX_WARNED_TOPICS = 10_000;
/** DISCONNECT reason codes that name the packet just received: Topic Name invalid, Packet too large, Payload format invalid. */
const PACKET_DISCONNECTS: ReadonlyMap<number, SetAsideClass> = new Map<number, SetAsideClass>([
  [0x90, "topic_name_invalid"],
  [0x95, "packet_too_large"],
  [0x99, "payload_format_invalid"],
]);

export const CLOSED_THREE_TIMES = `the broker closed the connection after this event ${MAX_REFUSALS} times (no reason given)`;

/** A lost connection, as far as it can say which record it was lost after. */
export interface LostConnection {
  /** The oldest record sent on it and not acknowledged, if any. */
  suspect?: OutboundRecord;
  /** When the suspect was sent (ms). */
  sentAt?: number;
  /** Records sent on it and not acknowledged. */
  inFlight: number;
  now: number;
  /** The broker's DISCONNECT reason code, when it sent one. */
  disconnectCode?: number;
  /** A status message (not a record) was in flight too. */
  statusInFlight: boolean;
  /** The gateway dropped it itself. */
  ours: boolean;
}

interface Running {
  sequence: bigint;
  count: number;
}

export class SetAsideKeeper {
  private readonly journal: Pick<PublisherJournal, "setAside" | "append">;
  private readonly status: PublisherStatus;
  private readonly log: Logger;
  private readonly counts: Partial<Record<SetAsideClass, number>> = {};
  private readonly warned = new Set<string>();
  /** Vague PUBACK refusals of one record in a row. */
  private refusals: Running | undefined;
  /** Connections closed right after one record in a row. */
  private closes: Running | undefined;

  constructor(options: {
    journal: Pick<PublisherJournal, "setAside" | "append">;
    status: PublisherStatus;
    log: Logger;
  }) {
    this.journal = options.journal;
    this.status = options.status;
    this.log = options.log;
  }

  /** Records set aside since start, by class. */
  stats(): Partial<Record<SetAsideClass, number>> {
    return { ...this.counts };
  }

  /** The broker acknowledged `sequence`: whatever ran against it is over. */
  acknowledged(sequence: bigint): void {
    if (this.refusals?.sequence === sequence) this.refusals = undefined;
    if (this.closes?.sequence === sequence) this.closes = undefined;
  }

  /**
   * A vague refusal (refusals.ts `retry_limited`) of `record`: true when it was the
   * MAX_REFUSALS-th in a row and the record is now set aside; false: retry it.
   */
  refusedAgain(record: OutboundRecord, code: number): boolean {
    const running = this.bump("refusals", record.sequence);
    if (running < MAX_REFUSALS) return false;
    this.setAside(
      record,
      "refused",
      `the broker refused this event ${MAX_REFUSALS} times running: ${reasonText(code)}`,
    );
    return true;
  }

  /**
   * Judges a lost connection; sets its suspect aside when the rules above say so. Returns
   * whether the next connection should be careful (one record at a time until a PUBACK).
   */
  lost(loss: LostConnection): boolean {
    const { suspect, disconnectCode } = loss;
    const packetClass =
      disconnectCode === undefined ? undefined : PACKET_DISCONNECTS.get(disconnectCode);
    const rightAfter = loss.sentAt !== undefined && loss.now - loss.sentAt <= RIGHT_AFTER_MS;
    const aboutAPacket = disconnectCode === undefined || packetClass !== undefined;
    if (loss.ours || suspect === undefined || !rightAfter || !aboutAPacket) {
      this.closes = undefined;
      return false;
    }
    if (loss.inFlight > 1 || loss.statusInFlight) return true; // cannot tell which: careful
    if (packetClass !== undefined) {
      this.closes = undefined;
      this.setAside(
        suspect,
        packetClass,
        `the broker disconnected right after this event: ${reasonText(disconnectCode!).replace("reason code", "DISCONNECT reason code")}`,
      );
      return true;
    }
    const running = this.bump("closes", suspect.sequence);
    this.log.debug(
      { sequence: String(suspect.sequence), topic: suspect.topic, times: running },
      "MQTT connection closed right after an event",
    );
    if (running >= MAX_REFUSALS) this.setAside(suspect, "connection_closed", CLOSED_THREE_TIMES);
    return true;
  }

  /** Sets `record` aside (see the header); never throws. */
  setAside(record: OutboundRecord, cls: SetAsideClass, reason: string): void {
    if (this.refusals?.sequence === record.sequence) this.refusals = undefined;
    if (this.closes?.sequence === record.sequence) this.closes = undefined;
    try {
      this.journal.setAside(record.sequence, reason);
    } catch (err) {
      this.log.error(
        { err, sequence: String(record.sequence), topic: record.topic },
        "cannot set a refused event aside in the journal",
      );
      return;
    }
    this.counts[cls] = (this.counts[cls] ?? 0) + 1;
    const fields = {
      sequence: String(record.sequence),
      id: record.id,
      topic: record.topic,
      reason,
    };
    if (this.warned.has(record.topic)) {
      this.log.debug(fields, "MQTT event set aside");
    } else {
      if (this.warned.size >= MAX_WARNED_TOPICS) this.warned.clear();
      this.warned.add(record.topic);
      this.log.warn(
        fields,
        "the MQTT broker refused an event for good: set aside in the journal, delivery goes on (logged once per topic)",
      );
    }
    if (record.type === EVENT_TYPES.deliverySetAside || !this.status.setAside) return;
    const notice: SetAsideNotice = {
      sequence: record.sequence,
      id: record.id,
      topic: record.topic,
      reason,
      class: cls,
    };
    let announcement: ReturnType<NonNullable<PublisherStatus["setAside"]>>;
    try {
      announcement = this.status.setAside(notice);
    } catch (err) {
      this.log.error({ err, ...fields }, "cannot compose the set-aside event");
      return;
    }
    this.journal.append([announcement]).catch((err: unknown) => {
      this.log.error({ err, ...fields }, "cannot journal the set-aside event");
    });
  }

  private bump(which: "refusals" | "closes", sequence: bigint): number {
    const running = this[which];
    const next =
      running?.sequence === sequence
        ? { sequence, count: running.count + 1 }
        : { sequence, count: 1 };
    this[which] = next;
    return next.count;
  }
}
