/**
 * The CloudEvents 1.0 envelope of wire format v1 (PRODUCT.md, "Events: wire format v1"), in
 * structured mode: one JSON document per event, content type application/cloudevents+json.
 * The published JSON Schema (plc2mqtt-events.schema.json, beside this file) describes exactly
 * what this module produces.
 *
 * Contract:
 * - `source` is `plc2mqtt://<gateway id>/<device id>`; for gateway-level events (the event's
 *   device is the gateway id) it is `plc2mqtt://<gateway id>`. Ids follow the config's
 *   identifier rule (letters, digits, `_ . -`), so they need no escaping in the URI.
 * - `sequence` is the CloudEvents "sequence" extension: a 20-digit zero-padded decimal string
 *   (an unsigned 64-bit number), so string order is sequence order. CloudEvents integers are
 *   only 32-bit, which is why it is never a number.
 * - `id` is `<journal epoch>-<20-digit sequence>`: unique for the journal's lifetime and the
 *   same on every re-send of the same record.
 * - `time` is RFC 3339 in UTC with milliseconds (`Date.prototype.toISOString`).
 * - The asset context travels as the extension attributes `site`, `area`, `line`,
 *   `equipment` (only those set and non-empty); `replay: true` only on re-published history.
 *   Extension values are scalars, so the device's context tag values go into `data.context`
 *   (only when there are any).
 * - `serializeCloudEvent` is deterministic: the envelope in a fixed attribute order (data
 *   last), object keys inside `data` sorted, no whitespace. It refuses values JSON cannot
 *   carry faithfully (NaN, +-Infinity, bigint, undefined) instead of silently writing null:
 *   the engine decides what such a value means before it becomes an event.
 *
 * Errors are plain TypeError/RangeError with the offending value named: they are programming
 * errors of the caller (events/ is a leaf and does not use lib/errors.ts).
 */
import type { GatewayEvent, JsonValue } from "./types.ts";

export const CONTENT_TYPE = "application/cloudevents+json";
export const BATCH_CONTENT_TYPE = "application/cloudevents-batch+json";
export const SPEC_VERSION = "1.0";
export const DATA_CONTENT_TYPE = "application/json";

export interface EnvelopeContext {
  gatewayId: string;
}

/** The CloudEvents 1.0 structured-mode JSON document of an event. */
export interface CloudEvent {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  /** 20-digit zero-padded decimal. */
  sequence: string;
  datacontenttype: "application/json";
  site?: string;
  area?: string;
  line?: string;
  equipment?: string;
  replay?: true;
  data: { [key: string]: JsonValue };
}

/** The envelope attributes in the order they are written; extensions not listed follow, sorted. */
const ATTRIBUTE_ORDER = [
  "specversion",
  "id",
  "source",
  "type",
  "subject",
  "time",
  "sequence",
  "datacontenttype",
  "site",
  "area",
  "line",
  "equipment",
  "replay",
] as const;

const ASSET_LEVELS = ["site", "area", "line", "equipment"] as const;

/** The config's identifier rule (src/config/schema/common.ts), repeated: events/ is a leaf. */
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** URI-unreserved characters: the epoch goes into ids verbatim. */
const EPOCH = /^[A-Za-z0-9._~-]+$/;
/** CloudEvents attribute naming rule. */
const ATTRIBUTE_NAME = /^[a-z0-9]+$/;

const MAX_SEQUENCE = 2n ** 64n - 1n;
const SEQUENCE_DIGITS = 20;

/** The last sequence formatted: an event's id and its document format the same one in turn. */
let lastSequence = -1n;
let lastSequenceText = "";

/** A sequence number as the 20-digit zero-padded decimal string of the wire format. */
export function formatSequence(sequence: bigint): string {
  if (sequence === lastSequence) return lastSequenceText;
  if (typeof sequence !== "bigint" || sequence < 0n || sequence > MAX_SEQUENCE) {
    throw new RangeError(
      `sequence ${String(sequence)} is not an unsigned 64-bit integer (0 to ${MAX_SEQUENCE})`,
    );
  }
  lastSequenceText = sequence.toString().padStart(SEQUENCE_DIGITS, "0");
  lastSequence = sequence;
  return lastSequenceText;
}

/** Parses a sequence written by formatSequence (or any plain decimal of 1 to 20 digits). */
export function parseSequence(text: string): bigint {
  if (typeof text !== "string" || !/^[0-9]{1,20}$/.test(text)) {
    throw new RangeError(
      `sequence ${JSON.stringify(text)} is not a decimal of 1 to 20 digits (e.g. 00000000000000000042)`,
    );
  }
  const value = BigInt(text);
  if (value > MAX_SEQUENCE) {
    throw new RangeError(`sequence ${text} is beyond the unsigned 64-bit range`);
  }
  return value;
}

/** The event id: `<epoch>-<20-digit sequence>`. */
export function cloudEventId(epoch: string, sequence: bigint): string {
  if (!EPOCH.test(epoch)) {
    throw new TypeError(
      `journal epoch ${JSON.stringify(epoch)} must be non-empty and use only letters, digits, . _ ~ -`,
    );
  }
  return `${epoch}-${formatSequence(sequence)}`;
}

/** The `source` attribute of an event of `device` on gateway `gatewayId`. */
export function eventSource(gatewayId: string, device: string): string {
  checkIdentifier("gateway id", gatewayId);
  if (device === gatewayId) return `plc2mqtt://${gatewayId}`;
  checkIdentifier("device id", device);
  return `plc2mqtt://${gatewayId}/${device}`;
}

/**
 * Builds the CloudEvents document of `event` with the sequence and id the journal gave it.
 * `replay` marks an event re-published from history.
 */
export function toCloudEvent(
  event: GatewayEvent,
  sequence: bigint,
  id: string,
  ctx: EnvelopeContext,
  replay?: boolean,
): CloudEvent {
  const what = `event ${JSON.stringify(event.type)} of ${JSON.stringify(event.device)}`;
  if (typeof event.type !== "string" || event.type === "") {
    throw new TypeError(`${what}: type must be a non-empty string`);
  }
  if (typeof event.subject !== "string" || event.subject === "") {
    throw new TypeError(`${what}: subject must be a non-empty string`);
  }
  if (typeof id !== "string" || id === "") throw new TypeError(`${what}: id must not be empty`);
  if (!Number.isFinite(event.time) || Math.abs(event.time) > 8.64e15) {
    throw new RangeError(`${what} ${event.subject}: time ${event.time} is not a valid instant`);
  }
  const data: { [key: string]: JsonValue } = { ...event.data };
  const context = event.context;
  if (context !== undefined && Object.keys(context).length > 0) {
    if (Object.hasOwn(data, "context")) {
      throw new TypeError(`${what} ${event.subject}: data.context is reserved for context tags`);
    }
    data.context = { ...context };
  }
  const ce: CloudEvent = {
    specversion: SPEC_VERSION,
    id,
    source: eventSource(ctx.gatewayId, event.device),
    type: event.type,
    subject: event.subject,
    time: new Date(event.time).toISOString(),
    sequence: formatSequence(sequence),
    datacontenttype: DATA_CONTENT_TYPE,
    data,
  };
  for (const level of ASSET_LEVELS) {
    const value = event.asset[level];
    if (value !== undefined && value !== "") ce[level] = value;
  }
  if (replay === true) ce.replay = true;
  return ce;
}

/** The JSON text of a CloudEvents document: fixed attribute order, sorted data keys. */
export function serializeCloudEvent(ce: CloudEvent): string {
  return JSON.stringify(canonicalEnvelope(ce));
}

/** The JSON text of a batch (application/cloudevents-batch+json): an array of documents. */
export function serializeCloudEventBatch(events: readonly CloudEvent[]): string {
  return JSON.stringify(events.map(canonicalEnvelope));
}

/** A published document marked `replay: true`, for re-publishing from history. */
export function withReplay(payload: string): string {
  const ce: unknown = JSON.parse(payload);
  if (typeof ce !== "object" || ce === null || Array.isArray(ce)) {
    throw new TypeError(`not a CloudEvents document: ${payload.slice(0, 80)}`);
  }
  return serializeCloudEvent({ ...(ce as CloudEvent), replay: true });
}

function canonicalEnvelope(ce: CloudEvent): Record<string, unknown> {
  const source = ce as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const known = new Set<string>(ATTRIBUTE_ORDER);
  const extensions = Object.keys(source)
    .filter((k) => k !== "data" && !known.has(k))
    .sort();
  for (const name of [...ATTRIBUTE_ORDER, ...extensions]) {
    const value = source[name];
    if (value === undefined) continue;
    if (!ATTRIBUTE_NAME.test(name)) {
      throw new TypeError(`CloudEvents attribute name ${JSON.stringify(name)} must be a-z0-9 only`);
    }
    if (typeof value !== "string" && typeof value !== "boolean" && !isFiniteNumber(value)) {
      throw new TypeError(
        `CloudEvents attribute ${name} of event ${String(ce.id)} must be a string, boolean or finite number`,
      );
    }
    out[name] = value;
  }
  out.data = canonicalValue(ce.data, "data", ce.id);
  return out;
}

function canonicalValue(value: unknown, path: string, id: string): JsonValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (Number.isFinite(value)) return value;
    throw new TypeError(`event ${id}: ${path} is ${value}, which JSON cannot carry`);
  }
  if (Array.isArray(value)) return value.map((v, i) => canonicalValue(v, `${path}[${i}]`, id));
  if (typeof value === "object") {
    // A null prototype keeps a "__proto__" key an ordinary key.
    const out: { [key: string]: JsonValue } = Object.create(null);
    for (const key of Object.keys(value).sort()) {
      out[key] = canonicalValue((value as Record<string, unknown>)[key], `${path}.${key}`, id);
    }
    return out;
  }
  throw new TypeError(`event ${id}: ${path} is a ${typeof value}, which JSON cannot carry`);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function checkIdentifier(what: string, value: string): void {
  if (typeof value !== "string" || !IDENTIFIER.test(value)) {
    throw new TypeError(
      `${what} ${JSON.stringify(value)} must start with a letter or digit and use only letters, digits, _, . and -`,
    );
  }
}
