/**
 * What the gateway and a device's I/O thread (io-thread.ts, io-thread-entry.ts) send each
 * other. Calls carry an id; every call gets exactly one result with that id. Errors cross as
 * plain objects and are rebuilt as GatewayErrors with their code and details; a log line
 * crosses with its level, message and fields (an Error among the fields is rebuilt too).
 *
 * Samples cross without `raw` (the registers behind a value, only `plc2mqtt read` shows them,
 * and it reads on the main thread): the engine never reads it, and copying it costs. A poll's
 * samples cross in columns, names by number (io-thread-samples.ts).
 */
import type { DeviceConfig } from "../../config/schema/root.ts";
import { type ErrorCode, ErrorCodes, GatewayError } from "../../lib/errors.ts";
import type { TagSample } from "../types.ts";
import type { ModbusDriverOptions } from "./driver.ts";
import type { PackedSamples } from "./io-thread-samples.ts";

/** A poll group by its place in pollGroups() at a generation, or an ad-hoc list of tags. */
export type GroupRef = { index: number; generation: number } | { tags: readonly string[] };

/** Polls a schedule takes ahead of the host before it skips (the main thread is behind). */
export const MAX_POLLS_AHEAD = 10;

export type Call =
  | { op: "connect"; id: number }
  | { op: "read"; id: number; group?: GroupRef }
  | { op: "subscribe"; id: number }
  | { op: "updateTags"; id: number; next: DeviceConfig }
  /** Polls a group at its interval until aborted; each poll comes as a "poll" reply. */
  | { op: "poll"; id: number; group: GroupRef & { index: number }; interval: number }
  /** The host took one poll of schedule `id`. */
  | { op: "taken"; id: number }
  | { op: "close"; id: number }
  /** Aborts the signal of call `id` (connect and subscribe signals live until close). */
  | { op: "abort"; id: number };

/** What the host keeps of the driver across threads (a new thread starts from it). */
export type Carried = Pick<ModbusDriverOptions, "learnedIds" | "retries">;

export type Reply =
  | { kind: "result"; id: number; ok: true; value: unknown; state: ThreadState }
  | { kind: "result"; id: number; ok: false; error: WireError; state: ThreadState }
  | { kind: "samples"; samples: TagSample[] }
  /** One poll of schedule `id`, its samples in columns (io-thread-samples.ts). */
  | {
      kind: "poll";
      id: number;
      samples: PackedSamples;
      durationMs: number;
      skipped: number;
      state: ThreadState;
    }
  | { kind: "log"; level: LogLevel; fields: Record<string, unknown>; msg: string };

export type ThreadState = Carried & { connected: boolean };

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface WireError {
  name: string;
  message: string;
  /** A catalogue code (rebuilt as a GatewayError), or a system code such as ECONNREFUSED. */
  code?: string;
  details?: Record<string, unknown>;
  stack?: string;
  cause?: WireError;
}

/** How deep a chain of causes crosses. */
const MAX_CAUSES = 4;

export function toWire(err: unknown, depth = 0): WireError {
  if (!(err instanceof Error)) return { name: "Error", message: String(err) };
  const out: WireError = { name: err.name, message: err.message };
  if (err.stack !== undefined) out.stack = err.stack;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") out.code = code;
  if (err instanceof GatewayError && err.details !== undefined)
    out.details = cloneable(err.details) ?? {};
  if (err.cause !== undefined && depth < MAX_CAUSES) out.cause = toWire(err.cause, depth + 1);
  return out;
}

export function fromWire(wire: WireError): Error {
  const cause = wire.cause === undefined ? {} : { cause: fromWire(wire.cause) };
  const err =
    wire.code !== undefined && wire.code in ErrorCodes
      ? new GatewayError(wire.code as ErrorCode, wire.message, {
          ...cause,
          ...(wire.details ? { details: wire.details } : {}),
        })
      : Object.assign(new Error(wire.message, cause), {
          name: wire.name,
          ...(wire.code === undefined ? {} : { code: wire.code }),
        });
  if (wire.stack !== undefined) err.stack = wire.stack;
  return err;
}

/** A sample as it crosses: without `raw`. */
export function wireSample(sample: TagSample): TagSample {
  if (sample.raw === undefined) return sample;
  const { raw: _raw, ...rest } = sample;
  return rest;
}

/** Log fields as they cross: Errors as WireErrors (marked), the rest if it can be cloned. */
export function wireFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] =
      value instanceof Error
        ? { [WIRE_ERROR]: toWire(value) }
        : (cloneable(value) ?? "(not shown: cannot cross threads)");
  }
  return out;
}

export function fieldsFromWire(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    const wire =
      typeof value === "object" && value !== null
        ? (value as Record<string, unknown>)[WIRE_ERROR]
        : undefined;
    out[key] = wire === undefined ? value : fromWire(wire as WireError);
  }
  return out;
}

const WIRE_ERROR = "__plc2mqtt_error";

function cloneable<T>(value: T): T | undefined {
  try {
    return structuredClone(value);
  } catch {
    return undefined;
  }
}
