/**
 * Shared pieces of the publisher tests: events, the gateway status callbacks, an MQTT config
 * parsed through the real schema (so defaults are the product's), a logger that keeps its
 * output. No vitest import: the child-process fixture uses it too.
 */
import { Writable } from "node:stream";
import { mqttSchema } from "../../src/config/schema/gateway.ts";
import { EVENT_TYPES, type GatewayEvent } from "../../src/events/types.ts";
import { createLogger, type Logger } from "../../src/lib/logger.ts";
import type { MqttConfig, PublisherStatus } from "../../src/publish/types.ts";
import type { Received } from "../support/mosquitto.ts";

export function telemetry(i: number): GatewayEvent {
  return {
    type: EVENT_TYPES.telemetry,
    device: "press-1",
    subject: "counter",
    time: 1_700_000_000_000 + i,
    data: { value: i, reason: "change" },
    topicClass: "telemetry",
    asset: {},
  };
}

function gatewayStatus(status: string): GatewayEvent {
  return {
    type: EVENT_TYPES.gatewayStatus,
    device: "gw-1",
    subject: "gateway",
    time: Date.now(),
    data: { status },
    topicClass: "status",
    asset: {},
  };
}

/**
 * Status topic test/status/gateway; the will says `lost`, a clean stop says `offline`; an event
 * set aside is announced on test/status/delivery.
 */
export const testStatus: PublisherStatus = {
  online: () => gatewayStatus("online"),
  will: (reserved) => ({
    topic: reserved.topic,
    retain: true,
    payload: JSON.stringify({ id: `${reserved.id}-will`, data: { status: "lost" } }),
  }),
  offline: () => gatewayStatus("offline"),
  setAside: (notice) => ({
    type: EVENT_TYPES.deliverySetAside,
    device: "gw-1",
    subject: "delivery",
    time: Date.now(),
    data: {
      sequence: String(notice.sequence),
      event_id: notice.id,
      topic: notice.topic,
      reason: notice.reason,
    },
    topicClass: "status",
    asset: {},
  }),
};

export function mqttConfig(
  url: string,
  overrides: Record<string, unknown> = {},
): MqttConfig & { password?: string } {
  return mqttSchema.parse({ url, reconnect_min: "20ms", reconnect_max: "200ms", ...overrides });
}

export interface CapturedLog {
  log: Logger;
  text(): string;
}

/** A real pino logger (with the product's redaction) writing into memory. */
export function captureLog(level = "debug"): CapturedLog {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { log: createLogger({ level, destination }), text: () => chunks.join("") };
}

export interface Parsed {
  id: string;
  sequence: number;
  payload: string;
}

export function parse(messages: readonly Received[]): Parsed[] {
  return messages.map((m) => {
    const body = JSON.parse(m.payload) as { id: string; sequence: string };
    return { id: body.id, sequence: Number(body.sequence), payload: m.payload };
  });
}
