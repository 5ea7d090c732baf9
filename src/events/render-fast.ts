/**
 * The CloudEvents JSON text of an event, written in one pass: the same bytes as
 * serializeCloudEvent(toCloudEvent(...)) (cloudevent.ts, the reference, and the one replay and
 * tests use), at a fraction of the cost on the durable path (issue 12: rendering took 8% of the
 * gateway's time; it allocated a document, a canonical copy of it and a sorted copy of every
 * object before JSON.stringify).
 *
 * Invariants:
 * - Byte-identical to the reference for every event (test/events/render-fast.test.ts compares
 *   them over every sample and randomized data): attributes in their fixed order, extension
 *   attributes, data keys in the reference's order (array-index keys first, ascending, then the
 *   others sorted; an order already right is not copied), numbers and
 *   strings as JSON.stringify writes them.
 * - The same refusals, with the reference's messages: an empty type, subject or id, a time
 *   that is not an instant, data.context taken, a device or gateway id that is not an
 *   identifier, NaN, infinities or a value JSON cannot carry.
 * - What depends only on the device (source, asset attributes) is computed once per device and
 *   asset object, the text of a tag's type and subject once per tag (at most 100,000 kept); the
 *   time's text once per run of events with the same time.
 */
import { eventSource, formatSequence, serializeCloudEvent, toCloudEvent } from "./cloudevent.ts";
import type { AssetContext, GatewayEvent } from "./types.ts";

const ASSET_LEVELS = ["site", "area", "line", "equipment"] as const;

interface DeviceParts {
  asset: AssetContext;
  /** `,"source":"..."` */
  source: string;
  /** `","datacontenttype":"application/json","site":"...",...,"data":` (assets in order). */
  tail: string;
  /**
   * `,"source":"...","type":"...","subject":"...","time":"` by type and subject: the text
   * between the id and the time is the same for every event of a tag (issue 12: the document
   * was some twenty concatenations and three JSON.stringify calls an event; now nine and one).
   */
  middles: Map<string, Map<string, string>>;
}

/** Middles kept for all devices together (a tag map's tags are far fewer). */
const MIDDLES_KEPT = 100_000;

export type FastRenderer = (event: GatewayEvent, sequence: bigint, id: string) => string;

/** A renderer for one gateway: caches what depends on the device only. */
export function fastRenderer(gatewayId: string): FastRenderer {
  const devices = new Map<string, DeviceParts>();
  const partsOf = (event: GatewayEvent): DeviceParts => {
    const cached = devices.get(event.device);
    if (cached !== undefined && cached.asset === event.asset) return cached;
    let asset_json = "";
    for (const level of ASSET_LEVELS) {
      const value = event.asset[level];
      if (value !== undefined && value !== "") {
        if (typeof value !== "string") return slow; // the reference says what is wrong
        asset_json += `,"${level}":${JSON.stringify(value)}`;
      }
    }
    const parts = {
      asset: event.asset,
      source: `,"source":${JSON.stringify(eventSource(gatewayId, event.device))}`,
      tail: `","datacontenttype":"application/json"${asset_json},"data":`,
      middles: new Map(),
    };
    devices.set(event.device, parts);
    return parts;
  };
  let middlesKept = 0;
  const middleOf = (parts: DeviceParts, type: string, subject: string): string => {
    let subjects = parts.middles.get(type);
    if (subjects === undefined) {
      subjects = new Map();
      parts.middles.set(type, subjects);
    }
    let middle = subjects.get(subject);
    if (middle === undefined) {
      if (middlesKept >= MIDDLES_KEPT) {
        for (const kept of devices.values()) kept.middles.clear();
        middlesKept = 0;
        subjects = new Map();
        parts.middles.set(type, subjects);
      }
      middle = `${parts.source},"type":${JSON.stringify(type)},"subject":${JSON.stringify(subject)},"time":"`;
      subjects.set(subject, middle);
      middlesKept++;
    }
    return middle;
  };
  const slow = { asset: {}, source: "", tail: "", middles: new Map() } as DeviceParts;
  // the events of one poll share their time: its text is made once (Date formatting was about
  // 1.5 % of the gateway's main thread at 10,000 events/s)
  let lastTime = Number.NaN;
  let lastIso = "";
  return (event, sequence, id) => {
    const reference = () => serializeCloudEvent(toCloudEvent(event, sequence, id, { gatewayId }));
    if (
      typeof event.type !== "string" ||
      event.type === "" ||
      typeof event.subject !== "string" ||
      event.subject === "" ||
      typeof id !== "string" ||
      id === "" ||
      !Number.isFinite(event.time) ||
      Math.abs(event.time) > 8.64e15 ||
      typeof event.data !== "object" ||
      event.data === null ||
      Object.hasOwn(event.data, "context")
    ) {
      return reference(); // throws the reference's error
    }
    const parts = partsOf(event);
    if (parts === slow) return reference();
    if (event.time !== lastTime) {
      lastIso = new Date(event.time).toISOString();
      lastTime = event.time;
    }
    let data = canonical(event.data);
    if (data === undefined) return reference();
    const context = event.context;
    if (context !== undefined) {
      const keys = Object.keys(context);
      if (keys.length > 0) {
        // "context" sorts among the data keys: the reference puts it in data, then sorts
        const withContext = { ...event.data, context } as Record<string, unknown>;
        data = canonical(withContext);
        if (data === undefined) return reference();
      }
    }
    const middle = middleOf(parts, event.type, event.subject);
    return `{"specversion":"1.0","id":${JSON.stringify(id)}${middle}${lastIso}","sequence":"${formatSequence(sequence)}${parts.tail}${data}}`;
  };
}

/** JSON with sorted object keys; undefined when the value cannot be carried (the caller falls back). */
function canonical(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      return Number.isFinite(value) ? JSON.stringify(value) : undefined;
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          const item = canonical(value[i]);
          if (item === undefined) return undefined;
          out += i === 0 ? item : `,${item}`;
        }
        return `${out}]`;
      }
      const record = value as Record<string, unknown>;
      const own = Object.keys(record);
      const keys = canonicalKeys(own);
      if (keys === own) {
        const flat = flatJson(record, keys);
        if (flat !== undefined) return flat;
      }
      let out = "{";
      let first = true;
      for (const key of keys) {
        const item = record[key];
        // the reference keeps a key whose value is undefined out of JSON too, but refuses it
        const text = canonical(item);
        if (text === undefined) return undefined;
        out += `${first ? "" : ","}${keyText(key)}${text}`;
        first = false;
      }
      return `${out}}`;
    }
    default:
      return undefined;
  }
}

/**
 * JSON.stringify's text of a plain object whose keys are in canonical order already and whose
 * values are all strings, booleans, null or finite numbers (telemetry's data): then it is
 * canonical()'s text, made in one native pass instead of a string per key and value.
 * Undefined for anything else (canonical() goes on key by key).
 */
function flatJson(record: Record<string, unknown>, keys: readonly string[]): string | undefined {
  const proto = Object.getPrototypeOf(record);
  if (proto !== Object.prototype && proto !== null) return undefined;
  for (const key of keys) {
    const item = record[key];
    switch (typeof item) {
      case "string":
      case "boolean":
        continue;
      case "number":
        if (Number.isFinite(item)) continue;
        return undefined;
      default:
        if (item === null) continue;
        return undefined;
    }
  }
  return JSON.stringify(record);
}

/** `"key":` of data keys seen before (a tag map's keys are few): built once each. */
const KEYS_KEPT = 4096;
const keyTexts = new Map<string, string>();

function keyText(key: string): string {
  let text = keyTexts.get(key);
  if (text === undefined) {
    if (keyTexts.size >= KEYS_KEPT) keyTexts.clear();
    text = `${JSON.stringify(key)}:`;
    keyTexts.set(key, text);
  }
  return text;
}

/**
 * The order the reference writes keys in: it sorts them and builds a new object, whose own keys
 * then enumerate integer-like ones (array indexes) first, ascending, and the others in sorted
 * order. Object.keys() already yields the array indexes first, ascending.
 */
function canonicalKeys(keys: string[]): string[] {
  let first = 0;
  while (first < keys.length && isArrayIndex(keys[first]!)) first++;
  for (let i = first + 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) return [...keys.slice(0, first), ...keys.slice(first).sort()];
  }
  return keys;
}

function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9][0-9]*)$/.test(key) && Number(key) < 4_294_967_295;
}
