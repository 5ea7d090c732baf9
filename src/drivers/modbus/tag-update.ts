/**
 * Which changes of a Modbus device's config the driver applies on the live connection (issue
 * 13 point 3): the tag map and what only shapes the reads and the decoding. Everything else
 * (protocol, host, port, serial line, timeouts the link times its frames by, transaction ids,
 * requests in flight, reconnect backoff) needs a new connection. Listed as what MAY change, so
 * a field added to the schema later reconnects until someone decides otherwise.
 */
import { isDeepStrictEqual } from "node:util";
import type { ResolvedModbusTag } from "../../config/modbus-tags.ts";
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";

const LIVE_KEYS: ReadonlySet<string> = new Set([
  "tags",
  "unit_id",
  "address_base",
  "byte_order",
  "word_order",
  "poll_interval",
  "max_gap",
  "max_registers_per_request",
  "max_bits_per_request",
  "transient_retries",
  // read by the engine and the event builder, not by the driver
  "site",
  "area",
  "line",
  "equipment",
  "stale_after",
  "context",
]);

/** The first setting that needs a new connection, or undefined when none changed. */
export function connectionChange(
  current: ModbusDeviceConfig,
  next: ModbusDeviceConfig,
): string | undefined {
  const keys = new Set([...Object.keys(current), ...Object.keys(next)]);
  for (const key of keys) {
    if (LIVE_KEYS.has(key)) continue;
    const a = (current as Record<string, unknown>)[key];
    const b = (next as Record<string, unknown>)[key];
    if (!isDeepStrictEqual(a, b)) return key;
  }
  return undefined;
}

/** Names of the tags in `before` whose definition is not the same in `after` (or is gone). */
export function changedTags(
  before: readonly ResolvedModbusTag[],
  after: readonly ResolvedModbusTag[],
): Set<string> {
  const now = new Map(after.map((t) => [t.name, t]));
  return new Set(before.filter((t) => !isDeepStrictEqual(t, now.get(t.name))).map((t) => t.name));
}
