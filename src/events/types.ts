/**
 * The event types of wire format v1 (PRODUCT.md, "Events: wire format v1") and the shape the
 * engine and the app hand to the journal: an event without its sequence and id, which only
 * the journal assigns.
 */

export const EVENT_TYPES = {
  telemetry: "plc2mqtt.telemetry",
  stateChanged: "plc2mqtt.state.changed",
  alarmChanged: "plc2mqtt.alarm.changed",
  qualityChanged: "plc2mqtt.quality.changed",
  deviceStatus: "plc2mqtt.device.status",
  gatewayStatus: "plc2mqtt.gateway.status",
  journalOverflow: "plc2mqtt.journal.overflow",
  deliverySetAside: "plc2mqtt.delivery.set_aside",
} as const;

/** The topic class level: telemetry, state, event (triggers), quality, status. */
export type TopicClass = "telemetry" | "state" | "event" | "quality" | "status";

/** Asset context carried as CloudEvents extension attributes (ISA-95 levels). */
export interface AssetContext {
  site?: string;
  area?: string;
  line?: string;
  equipment?: string;
}

export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** An event before the journal gives it a sequence number and an id. */
export interface GatewayEvent {
  /** One of EVENT_TYPES, or a user-defined trigger event type such as `batch.completed`. */
  type: string;
  /** The configured device id; the gateway id for gateway-level events. */
  device: string;
  /** The tag, alarm or trigger name (`subject` on the wire). */
  subject: string;
  /** When it happened at the source, ms since the epoch. */
  time: number;
  data: { [key: string]: JsonValue };
  /** Where it is published: the class level of the topic, and whether it is retained. */
  topicClass: TopicClass;
  /** Asset context of the device (site, area, line, equipment). */
  asset: AssetContext;
  /** Latest values of the device's `context` tags (e.g. the current batch or order id). */
  context?: { [tag: string]: JsonValue };
}
