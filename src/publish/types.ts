/**
 * What the publisher needs from the rest of the gateway, and what it reports. The app wires a
 * journal, the resolved MQTT config and the gateway status events in; nothing here exposes the
 * MQTT library's types. publish/ does not import journal/ (parts meet in app/): the journal
 * appears here as the structural subset the publisher uses, which journal/'s Journal satisfies.
 */
import type { z } from "zod";
import type { mqttSchema } from "../config/schema/gateway.ts";
import type { GatewayEvent } from "../events/types.ts";
import type { Logger } from "../lib/logger.ts";
import type { SetAsideClass } from "./refusals.ts";

/** The `mqtt:` section after defaults, with `${env:}`/`${file:}` references resolved. */
export type MqttConfig = z.output<typeof mqttSchema>;

/** How a record goes on the wire (journal/'s RenderedEvent). */
export interface OutboundMessage {
  topic: string;
  retain: boolean;
  /** The CloudEvents JSON document, exactly as it is published. */
  payload: string;
}

/** A journal record as the publisher sees it (a subset of journal/'s JournalRecord). */
export interface OutboundRecord extends OutboundMessage {
  sequence: bigint;
  id: string;
  /** The event type (an announcement of a set-aside record is never announced in turn). */
  type: string;
}

/** The part of the journal contract (src/journal/types.ts) the publisher drains. */
export interface PublisherJournal {
  append(events: readonly GatewayEvent[]): Promise<OutboundRecord[]>;
  /**
   * Rewrites a record not yet published (same sequence and id); resolves once durable. Rejects
   * when the record was published or is gone (dropped by the size policy).
   */
  replace(sequence: bigint, event: GatewayEvent): Promise<OutboundRecord>;
  /** Unpublished records with sequence > after, in sequence order, at most max. */
  unpublished(after: bigint, max: number): OutboundRecord[];
  /** Marks records published (their PUBACK arrived). */
  markPublished(sequences: readonly bigint[]): void;
  /**
   * Sets a record aside: the broker refused it for good. Never returned by unpublished()
   * again; kept in the journal with the reason.
   */
  setAside(sequence: bigint, reason: string): void;
  /** Resolves once a record with sequence > after is committed, or rejects when aborted. */
  waitForAppend(after: bigint, signal: AbortSignal): Promise<void>;
  /** The highest sequence committed so far. */
  lastSequence(): bigint;
}

/** The gateway status events; each is stamped with the time it is called at. */
export interface PublisherStatus {
  /**
   * `offline`, stamped now. Appended when a connection episode starts (the gateway is not
   * connected then), reserving the sequence of the session's online status; appended again at
   * a clean stop, published in place of the will.
   */
  offline(): GatewayEvent;
  /** `online`, stamped now: written over the reserved record once the session is established. */
  online(): GatewayEvent;
  /**
   * The last will of one connect attempt, composed as the attempt starts: it repeats the
   * reserved record's sequence, and can only say when the session it would end started.
   */
  will(reserved: OutboundRecord): OutboundMessage;
  /**
   * The event announcing that a record was set aside (plc2mqtt.delivery.set_aside), journaled
   * and published like any other. Without it nothing is announced (the rest still happens).
   */
  setAside?(notice: SetAsideNotice): GatewayEvent;
}

/** A record the publisher set aside, and why. */
export interface SetAsideNotice {
  sequence: bigint;
  /** The set-aside event's id. */
  id: string;
  topic: string;
  /** The refusal, in words (with the broker's reason code when it gave one). */
  reason: string;
  /** Its bounded class (metrics). */
  class: SetAsideClass;
}

export interface PublisherOptions {
  journal: PublisherJournal;
  /** References already resolved by the config loader. */
  mqtt: MqttConfig & { password?: string };
  clientId: string;
  status: PublisherStatus;
  log: Logger;
  /** How long one connect attempt may take up to the CONNACK (default 10s). */
  connectTimeoutMs?: number;
  /** For tests: the jitter source of the reconnect backoff (default Math.random). */
  random?: () => number;
  /** For tests: how long the PUBACK filter holds a read (ack-filter.ts; default 4 ms). */
  ackHoldMs?: number;
}

export interface PublisherStats {
  /** Messages sent and not yet acknowledged on the current connection (a batch counts once). */
  inFlight: number;
  /** Records acknowledged by the broker (PUBACK) since start. */
  published: number;
  /** Records sent again after a connection loss (they were sent before but not acknowledged). */
  resent: number;
  /** Connections established after the first one. */
  reconnects: number;
  /**
   * Records set aside since start (the broker refused them for good), by class. Always set by
   * the publisher; optional only so that stats made up elsewhere (tests) need not say it.
   */
  setAside?: Partial<Record<SetAsideClass, number>>;
  connected: boolean;
  /** The last connection or publish error, for health and metrics. */
  lastError?: string;
}

/** The MQTT 5 properties of a received PUBLISH that a request/response exchange uses. */
export interface MessageProperties {
  responseTopic?: string;
  correlationData?: Buffer;
  /** User properties; a name sent more than once keeps its values in order. */
  userProperties?: Record<string, string | string[]>;
}

/** A message handler for a subscription the gateway listens to. */
export type MessageHandler = (
  topic: string,
  payload: Buffer,
  properties: MessageProperties,
) => void;

/** An answer to a request (MQTT 5 request/response): QoS 1, never retained. */
export interface ResponseMessage {
  /** The request's Response Topic. */
  topic: string;
  payload: string;
  /** The request's Correlation Data, sent back unchanged. */
  correlationData?: Buffer;
}

export interface Subscription {
  /** An MQTT topic filter; `+` and `#` allowed. */
  filter: string;
  onMessage: MessageHandler;
}
