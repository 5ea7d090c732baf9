/**
 * Alarm words: an integer whose configured bits are alarms. Contract:
 * - The word is the good value as an integer: numbers (truncated; negative numbers in two's
 *   complement, so int16 -32768 has bit 15 set), 64-bit decimal text, bools as 0/1. Anything
 *   else is not an alarm word and leaves the alarms as they were.
 * - Each configured bit whose state differs from the previous word emits
 *   plc2mqtt.alarm.changed { alarm, active, bit, raw } with subject = the alarm name and topic
 *   class state, in bit order. On first sight only the active alarms are emitted.
 */
import type { TagValue } from "../events/sample.ts";
import { EVENT_TYPES } from "../events/types.ts";
import type { Draft } from "./types.ts";

export function alarmWord(value: TagValue): bigint | undefined {
  if (typeof value === "boolean") return value ? 1n : 0n;
  if (typeof value === "number" && Number.isFinite(value)) return BigInt(Math.trunc(value));
  if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value);
  return undefined;
}

function bitOf(word: bigint, bit: number): boolean {
  return ((word >> BigInt(bit)) & 1n) === 1n;
}

/** The alarm.changed drafts for a new word; previous undefined on first sight. */
export function alarmChanges(
  alarms: Record<string, string>,
  previous: bigint | undefined,
  word: bigint,
  raw: TagValue,
  time: number,
): Draft[] {
  const bits = Object.keys(alarms)
    .map(Number)
    .sort((a, b) => a - b);
  const drafts: Draft[] = [];
  for (const bit of bits) {
    const active = bitOf(word, bit);
    const changed = previous === undefined ? active : active !== bitOf(previous, bit);
    if (!changed) continue;
    const alarm = alarms[String(bit)]!;
    drafts.push({
      type: EVENT_TYPES.alarmChanged,
      subject: alarm,
      time,
      data: { alarm, active, bit, raw },
      topicClass: "state",
    });
  }
  return drafts;
}
