/**
 * Triggers: a user-named event when a tag's good value does something. Contract:
 * - rising: the previous good value was falsy and this one is truthy (false -> true,
 *   0 -> non-zero; see truthy in values.ts); falling: the reverse; change: any change by
 *   value; value: the value becomes equal to the configured one (equal, or the same decimal
 *   text, so a 64-bit integer sent as text matches a number).
 * - Edges need two good values: nothing fires on first sight. The previous value is the last
 *   good one, so an edge across a bad period still fires.
 * - The event: type = trigger.event, subject = the tag name, topic class event, data
 *   { trigger: <tag name>, value, snapshot: { tag: value }, snapshot_errors?: { tag: reason } }
 *   where the snapshot holds the configured tags' values read from the device after the
 *   trigger was seen (never older than the trigger; see engine.ts). A tag whose read failed
 *   is null, and snapshot_errors (present only then) says why.
 */
import type { TagValue } from "../events/sample.ts";
import type { JsonValue } from "../events/types.ts";
import type { TriggerRule } from "./types.ts";
import { sameValue, truthy } from "./values.ts";

/** Snapshot reads of one device in one apply call: the value, or null and why. */
export type Fresh = Map<string, { value: TagValue; reason?: string }>;

/**
 * The trigger event's data. With snapshot reads (`fresh`), each snapshot tag takes its read
 * value; a tag not read or not good is null with its reason. Without any (the engine used on
 * its own), `known` gives the values of the same call, then the latest known ones.
 */
export function triggerData(
  trigger: string,
  value: TagValue,
  tags: readonly string[],
  fresh: Fresh | undefined,
  known: (tag: string) => JsonValue,
): { [key: string]: JsonValue } {
  const snapshot: { [tag: string]: JsonValue } = {};
  const errors: { [tag: string]: JsonValue } = {};
  for (const name of tags) {
    if (fresh === undefined) {
      snapshot[name] = known(name);
      continue;
    }
    const read = fresh.get(name) ?? { value: null, reason: "not read at the trigger" };
    snapshot[name] = read.value;
    if (read.reason !== undefined) errors[name] = read.reason;
  }
  const data: { [key: string]: JsonValue } = { trigger, value, snapshot };
  if (Object.keys(errors).length > 0) data.snapshot_errors = errors;
  return data;
}

function matches(value: TagValue, wanted: number | string | boolean): boolean {
  if (value === wanted) return true;
  const primitive = typeof value === "number" || typeof value === "string";
  return primitive && typeof wanted !== "boolean" && String(value) === String(wanted);
}

export function triggerFires(
  rule: TriggerRule,
  previous: { value: TagValue } | undefined,
  value: TagValue,
): boolean {
  if (previous === undefined) return false;
  const before = previous.value;
  switch (rule.on) {
    case "rising":
      return !truthy(before) && truthy(value);
    case "falling":
      return truthy(before) && !truthy(value);
    case "change":
      return !sameValue(before, value);
    case "value":
      return rule.value !== undefined && !matches(before, rule.value) && matches(value, rule.value);
  }
}
