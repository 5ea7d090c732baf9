/**
 * Re-publishing stored events (`plc2mqtt replay`): given records in sequence order, sends each
 * on its original topic, marked `replay: true`, over one connection of its own.
 *
 * Contract:
 * - Each document is the stored one with `replay: true` added (events/cloudevent.ts withReplay):
 *   the same id and sequence, so a consumer that de-duplicates on id drops a replay of an event
 *   it already has unless it accepts `replay: true` documents on purpose.
 * - QoS 1 and NEVER retained, whatever the record says: a replay must not overwrite the
 *   current retained state (status, machine state) with history.
 * - One event per message, always: mqtt.batch does not apply to a replay (batcher.ts is the
 *   daemon's drain only), so a replayed event of a batched class arrives on its own topic.
 * - Order: sent in the order given, on one connection, with at most min(mqtt.max_in_flight,
 *   the broker's Receive Maximum) unacknowledged; the broker forwards QoS 1 messages of one
 *   connection in that order.
 * - Every send waits at most ackTimeoutMs for its PUBACK. The first failure (a refusal, a lost
 *   connection, a PUBACK that did not come) stops the replay: nothing more is sent, and the
 *   error says how many were acknowledged and the first sequence that was not. No retries: a
 *   replay is re-run by the operator, and consumers de-duplicate on id.
 * - The client id is the caller's and must differ from the daemon's (a broker disconnects the
 *   older of two sessions with the same id). MQTT 5 first, 3.1.1 when the broker refuses 5.
 * - A document that cannot be marked (not a JSON object) is skipped and counted, not sent.
 * - A record larger than the broker's Maximum Packet Size (CONNACK) or mqtt.max_packet_size is
 *   never sent: it counts as refused.
 * - With `onRefused` (replay --set-aside), a refusal of one record (a PUBACK reason code, or too
 *   large) does not stop the replay: the record is reported there and the replay goes on; a
 *   lost connection or a missing PUBACK still stops it.
 */
import { withReplay } from "../events/cloudevent.ts";
import { withTimeout } from "../lib/abort.ts";
import { errorMessage, GatewayError, isGatewayError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { type Connection, fromMqttConfig, openConnection, parseBrokerUrl } from "./connection.ts";
import { oversize, packetLimit, reasonText } from "./refusals.ts";
import type { OutboundRecord, PublisherOptions } from "./types.ts";

/** What a replay needs of a stored record. */
export type ReplayRecord = Pick<OutboundRecord, "sequence" | "id" | "topic" | "payload">;

export interface ReplayOptions {
  /** The config's mqtt section, references resolved. */
  mqtt: PublisherOptions["mqtt"];
  /** Must not be the daemon's client id. */
  clientId: string;
  log: Logger;
  /** Longest wait for one PUBACK (default 10 s). */
  ackTimeoutMs?: number;
  /** Longest wait for the CONNACK (default 10 s). */
  connectTimeoutMs?: number;
  /** Called after every PUBACK with the number acknowledged so far. */
  onProgress?: (published: number) => void;
  /** Called with each record the broker acknowledged, in the order the PUBACKs came. */
  onAcked?: (record: ReplayRecord) => void;
  /** When given, a refused record is reported here and the replay goes on (see the header). */
  onRefused?: (record: ReplayRecord, reason: string) => void;
  signal?: AbortSignal;
  /** For tests: how long the PUBACK filter would hold a read (ack-filter.ts). */
  ackHoldMs?: number;
}

export interface ReplayResult {
  /** Records acknowledged by the broker. */
  published: number;
  /** Records whose document could not be marked as a replay (not sent). */
  skipped: number;
  /** Records refused (reported to onRefused): too large, or a PUBACK reason code. */
  refused: number;
  /** MQTT protocol version used: 5, or 4 (3.1.1). */
  protocolVersion: 4 | 5;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** Publishes `records` as replays (see the header); rejects on the first failure. */
export async function replayRecords(
  records: Iterable<ReplayRecord> | AsyncIterable<ReplayRecord>,
  options: ReplayOptions,
): Promise<ReplayResult> {
  const signal = options.signal ?? new AbortController().signal;
  const ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const conn = await connect(options, signal);
  // a replay sends as fast as its window lets it: PUBACKs are read as they come, never held
  conn.hurryAcks();
  const window = Math.max(1, Math.min(options.mqtt.max_in_flight, conn.receiveMaximum));
  const log = options.log.child({ url: conn.endpoint.display });
  log.info({ clientId: options.clientId, window }, "replay connected");
  const limit = packetLimit(options.mqtt, conn.maximumPacketSize);
  const inFlight = new Set<Promise<void>>();
  let published = 0;
  let skipped = 0;
  let refused = 0;
  const refuse = (record: ReplayRecord, reason: string): boolean => {
    if (!options.onRefused) return false;
    refused += 1;
    options.onRefused(record, reason);
    return true;
  };
  let failure: { err: unknown; sequence: bigint } | undefined;
  const aborted = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  const send = (record: ReplayRecord, payload: string) => {
    const noAck = () =>
      new GatewayError(
        "MQTT_PUBLISH",
        `no PUBACK for sequence ${record.sequence} on ${record.topic} within ${ackTimeoutMs} ms`,
      );
    const sent: Promise<void> = withTimeout(
      conn.publish(record.topic, payload, false),
      ackTimeoutMs,
      noAck,
    )
      .then(
        () => {
          published += 1;
          options.onAcked?.(record);
          options.onProgress?.(published);
        },
        (err: unknown) => {
          const code = isGatewayError(err, "MQTT_PUBLISH") ? err.details?.reasonCode : undefined;
          if (
            typeof code === "number" &&
            refuse(record, `the broker refused it: ${reasonText(code)}`)
          )
            return;
          if (!failure || record.sequence < failure.sequence)
            failure = { err, sequence: record.sequence };
        },
      )
      .finally(() => inFlight.delete(sent));
    inFlight.add(sent);
  };
  try {
    for await (const record of records) {
      while (inFlight.size >= window && !failure && !signal.aborted) {
        await Promise.race([...inFlight, aborted]);
      }
      if (failure || signal.aborted) break;
      let payload: string;
      try {
        payload = withReplay(record.payload);
      } catch (err) {
        skipped += 1;
        log.warn(
          { err, sequence: String(record.sequence) },
          "stored event not a document: skipped",
        );
        continue;
      }
      const tooLarge = oversize({ topic: record.topic, payload }, conn.protocolVersion, limit);
      if (tooLarge !== undefined) {
        if (refuse(record, tooLarge)) continue;
        failure = {
          err: new GatewayError("MQTT_PUBLISH", `sequence ${record.sequence}: ${tooLarge}`),
          sequence: record.sequence,
        };
        break;
      }
      send(record, payload);
    }
    await Promise.all(inFlight);
  } finally {
    await conn.end(Math.min(ackTimeoutMs, 5000));
  }
  if (failure) {
    throw new GatewayError(
      "MQTT_PUBLISH",
      `replay stopped: ${published} event(s) acknowledged; sequence ${failure.sequence} and later were not (${errorMessage(failure.err)})`,
      {
        cause: failure.err,
        details: { published, first_unacknowledged: String(failure.sequence) },
      },
    );
  }
  if (signal.aborted) {
    throw new GatewayError("ABORTED", `replay interrupted: ${published} event(s) acknowledged`, {
      cause: signal.reason,
      details: { published },
    });
  }
  return { published, skipped, refused, protocolVersion: conn.protocolVersion };
}

/** One connection, MQTT 5 first and 3.1.1 when the broker refuses 5 (as publisher.ts does). */
async function connect(options: ReplayOptions, signal: AbortSignal): Promise<Connection> {
  const { mqtt, clientId } = options;
  const fromConfig = fromMqttConfig(mqtt);
  const endpoint = parseBrokerUrl(mqtt.url);
  const attempt = (protocolVersion: 4 | 5) =>
    openConnection(
      {
        endpoint,
        clientId,
        ...fromConfig,
        connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS,
        protocolVersion,
        onMessage: () => {},
        ...(options.ackHoldMs === undefined ? {} : { ackHoldMs: options.ackHoldMs }),
      },
      signal,
    );
  try {
    return await attempt(5);
  } catch (err) {
    if (isGatewayError(err, "ABORTED") || !/unacceptable protocol version/i.test(causes(err)))
      throw err;
    options.log.info({}, "the broker refuses MQTT 5; using MQTT 3.1.1");
    return attempt(4);
  }
}

function causes(err: unknown): string {
  const parts: string[] = [];
  for (let e = err; e !== undefined && parts.length < 5; e = (e as { cause?: unknown }).cause)
    parts.push(errorMessage(e));
  return parts.join(": ");
}
