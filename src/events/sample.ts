/**
 * What a driver yields: one tag's value at one moment, with its quality. Drivers produce
 * samples and never decide what changed; the engine turns samples into events.
 */

/** good: read and decoded; uncertain: the source says so; bad: could not read; stale: too old. */
export type Quality = "good" | "uncertain" | "bad" | "stale";

/** A decoded value. 64-bit integers beyond 2^53 travel as decimal strings. */
export type TagValue = boolean | number | string | null | TagValue[] | { [key: string]: TagValue };

export interface TagSample {
  device: string;
  tag: string;
  /** null when quality is bad and nothing could be decoded. */
  value: TagValue;
  quality: Quality;
  /** Why the quality is not good: a timeout, an exception code and name, a decode failure. */
  reason?: string;
  /**
   * The reason as a stable code, beside the human text: a code of the error catalogue
   * (`MODBUS_TIMEOUT`, `MODBUS_REPLY_IN_DOUBT`, ...) or an OPC UA status code name
   * (`BadNodeIdUnknown`). For metrics and consumers that must not parse the text.
   */
  reasonCode?: string;
  /** When the value was valid at the source (PLC or OPC UA source timestamp), ms since epoch. */
  sourceTime?: number;
  /** When the gateway received it, ms since epoch. */
  readTime: number;
  /** The raw registers or bits behind the value, for commissioning (`plc2mqtt read`). */
  raw?: readonly number[];
  /**
   * Set on a sample the runner read from the device right after seeing a trigger fire, for that
   * trigger's snapshot (and its event's context): the engine uses it only there, never for the
   * tag's quality, state or telemetry, which follow the tag's own poll or subscription.
   */
  snapshotRead?: boolean;
}
