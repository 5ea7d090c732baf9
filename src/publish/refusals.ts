/**
 * What a broker's refusal of one publish means for that event, and the size of a PUBLISH on
 * the wire (so that an event larger than the broker takes is never sent).
 *
 * MQTT 5 PUBACK reason codes >= 0x80 (MQTT 5.0, 3.4.2.1), by what the publisher does:
 * - `set_aside`, the refusal can never succeed for this message, whatever the timing: 0x87 Not
 *   authorized, 0x90 Topic Name invalid, 0x95 Packet too large, 0x99 Payload format invalid.
 *   The event is set aside (kept in the journal, not published) and delivery goes on.
 * - `retry`, the broker cannot take it now: 0x97 Quota exceeded (and 0x89 Server busy, a
 *   CONNACK/DISCONNECT code some brokers also use here). Sent again after a backoff, on the
 *   same connection; never set aside (a quota passes; order matters more than speed).
 * - `retry_limited`, the broker gives no useful reason: 0x80 Unspecified error, 0x83
 *   Implementation specific error, and any code not listed here. Retried like `retry`, but a
 *   record refused this way MAX_REFUSALS times running is set aside: a plugin that refuses an
 *   event for good often says no more than 0x80, and must not stall the stream for ever.
 * - `reconnect`: 0x91 Packet Identifier in use is a session problem, not the event's: the
 *   connection is dropped and a new one starts.
 *
 * What the gateway can and cannot see (mosquitto 2.0.11, tried; aedes 1.2):
 * - An MQTT 3.1.1 PUBACK has no reason code, and a 3.1.1 broker that does not authorize a
 *   publish must either acknowledge it or close the connection [MQTT-3.3.5-2]. mosquitto
 *   acknowledges and drops it (its log says "Denied PUBLISH"): the event counts as published
 *   and never reaches a subscriber, and nothing on the wire tells the gateway. aedes and AWS
 *   IoT Core close the connection: caught by the rule for connections closed right after the
 *   same event MAX_REFUSALS times running, with no reason given (set-aside.ts).
 * - MQTT 5 with mosquitto: an ACL denial is PUBACK 0x87. With `max_queued_messages 0`,
 *   mosquitto 2.0 then also resets the connection ("Bad socket read/write"); the event is set
 *   aside already and the reset blames nothing else.
 * - `max_packet_size`: mosquitto announces it in its CONNACK to MQTT 5 clients, so a larger
 *   event is set aside before it is sent; to an MQTT 3.1.1 client it announces nothing and
 *   closes the connection when the packet arrives (set `mqtt.max_packet_size` then). A
 *   DISCONNECT 0x95 names the event only from brokers that enforce a limit they did not
 *   announce.
 * - mosquitto's older `message_size_limit`: MQTT 5 clients get PUBACK 0x95, a code MQTT 5 does
 *   not allow in a PUBACK: mqtt.js drops the connection on it, so it counts as a connection
 *   closed right after the event. MQTT 3.1.1 clients get an ordinary PUBACK and the event is
 *   dropped unseen.
 */

export type RefusalAction = "set_aside" | "retry" | "retry_limited" | "reconnect";

/** How many refusals (or closes right after it) in a row set a record aside. */
export const MAX_REFUSALS = 3;

/**
 * Bounded labels for metrics: the refusal a set-aside record got. `refused` is a vague
 * refusal repeated MAX_REFUSALS times; `connection_closed` a connection closed right after it
 * MAX_REFUSALS times with no reason.
 */
export const SET_ASIDE_CLASSES = [
  "packet_too_large",
  "not_authorized",
  "topic_name_invalid",
  "payload_format_invalid",
  "refused",
  "connection_closed",
] as const;
export type SetAsideClass = (typeof SET_ASIDE_CLASSES)[number];

const NAMES = new Map<number, string>([
  [0x80, "Unspecified error"],
  [0x83, "Implementation specific error"],
  [0x87, "Not authorized"],
  [0x89, "Server busy"],
  [0x90, "Topic Name invalid"],
  [0x91, "Packet Identifier in use"],
  [0x95, "Packet too large"],
  [0x97, "Quota exceeded"],
  [0x99, "Payload format invalid"],
]);

const SET_ASIDE = new Map<number, SetAsideClass>([
  [0x87, "not_authorized"],
  [0x90, "topic_name_invalid"],
  [0x95, "packet_too_large"],
  [0x99, "payload_format_invalid"],
]);

export interface Refusal {
  action: RefusalAction;
  /** For `set_aside`: the metrics class. */
  class?: SetAsideClass;
  /** "Not authorized (reason code 0x87)". */
  text: string;
}

export function hex(code: number): string {
  return `0x${code.toString(16).padStart(2, "0")}`;
}

/** The words of a reason code: "Not authorized (reason code 0x87)". */
export function reasonText(code: number): string {
  return `${NAMES.get(code) ?? "refused"} (reason code ${hex(code)})`;
}

/** What to do about a PUBACK with reason code `code` (>= 0x80). */
export function classifyPuback(code: number): Refusal {
  const text = reasonText(code);
  const setAside = SET_ASIDE.get(code);
  if (setAside !== undefined) return { action: "set_aside", class: setAside, text };
  if (code === 0x97 || code === 0x89) return { action: "retry", text };
  if (code === 0x91) return { action: "reconnect", text };
  return { action: "retry_limited", text };
}

/** Bytes of an MQTT Variable Byte Integer holding `n`. */
function varintBytes(n: number): number {
  if (n < 128) return 1;
  if (n < 16_384) return 2;
  if (n < 2_097_152) return 3;
  return 4;
}

/**
 * The size on the wire of a QoS 1 PUBLISH as connection.ts sends it: fixed header (1 byte and
 * the remaining length), topic (2 + UTF-8 bytes), packet identifier (2), for MQTT 5 the
 * property length (no properties are sent: 1 byte), and the payload (UTF-8 bytes). This is the
 * "packet size" MQTT 5's Maximum Packet Size limits (the total, fixed header included).
 */
export function publishPacketSize(topic: string, payload: string, protocolVersion: 4 | 5): number {
  const remaining =
    2 +
    Buffer.byteLength(topic, "utf8") +
    2 +
    (protocolVersion === 5 ? 1 : 0) +
    Buffer.byteLength(payload, "utf8");
  return 1 + varintBytes(remaining) + remaining;
}

/** The largest PUBLISH this connection may send, and where that limit comes from. */
export interface PacketLimit {
  bytes: number;
  /** "the broker's Maximum Packet Size" (CONNACK) or "mqtt.max_packet_size". */
  source: string;
}

/** The smaller of the broker's announced Maximum Packet Size and mqtt.max_packet_size. */
export function packetLimit(
  mqtt: { max_packet_size?: number | undefined },
  brokerMaximum: number | undefined,
): PacketLimit | undefined {
  const configured = mqtt.max_packet_size;
  if (brokerMaximum !== undefined && (configured === undefined || brokerMaximum <= configured))
    return { bytes: brokerMaximum, source: "the broker's Maximum Packet Size" };
  if (configured !== undefined) return { bytes: configured, source: "mqtt.max_packet_size" };
  return undefined;
}

/**
 * Why a message is too large for `limit`, or undefined when it fits. Short: it is stored with the
 * record and carried by the announcing event, which must fit the limit too.
 */
export function oversize(
  message: { topic: string; payload: string },
  protocolVersion: 4 | 5,
  limit: PacketLimit | undefined,
): string | undefined {
  if (limit === undefined) return undefined;
  const size = publishPacketSize(message.topic, message.payload, protocolVersion);
  if (size <= limit.bytes) return undefined;
  return `Packet too large: ${size} bytes, ${limit.source} is ${limit.bytes}`;
}
