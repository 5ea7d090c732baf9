/**
 * What the publisher needs from the rest of the gateway, and what it reports. The app wires a
 * journal, the resolved MQTT config and the gateway status events in; nothing here exposes the
 * MQTT library's types.
 */
import type { z } from "zod";
import type { mqttSchema } from "../config/schema/gateway.ts";
import type { GatewayEvent } from "../events/types.ts";
import type { Journal, JournalRecord, RenderedEvent } from "../journal/types.ts";
import type { Logger } from "../lib/logger.ts";

/** The `mqtt:` section after defaults, with `${env:}`/`${file:}` references resolved. */
export type MqttConfig = z.output<typeof mqttSchema>;

export interface PublisherStatus {
  /** Appended to the journal when a connection episode starts (before the first connect attempt). */
  online(): GatewayEvent;
  /** The last will for the session announced by that online record. */
  will(online: JournalRecord): RenderedEvent;
  /** Appended and published at a clean stop, replacing the will. */
  offline(): GatewayEvent;
}

export interface PublisherOptions {
  journal: Pick<Journal, "unpublished" | "markPublished" | "waitForAppend" | "append">;
  /** References already resolved by the config loader. */
  mqtt: MqttConfig & { password?: string };
  clientId: string;
  status: PublisherStatus;
  log: Logger;
  /** How long one connect attempt may take up to the CONNACK (default 10s). */
  connectTimeoutMs?: number;
  /** For tests: the jitter source of the reconnect backoff (default Math.random). */
  random?: () => number;
}

export interface PublisherStats {
  /** Records sent and not yet acknowledged on the current connection. */
  inFlight: number;
  /** Records acknowledged by the broker (PUBACK) since start. */
  published: number;
  /** Records sent again after a connection loss (they were sent before but not acknowledged). */
  resent: number;
  /** Connections established after the first one. */
  reconnects: number;
  connected: boolean;
  /** The last connection or publish error, for health and metrics. */
  lastError?: string;
}

/** A message handler for a subscription the gateway listens to. */
export type MessageHandler = (topic: string, payload: Buffer) => void;

export interface Subscription {
  /** An MQTT topic filter; `+` and `#` allowed. */
  filter: string;
  onMessage: MessageHandler;
}
