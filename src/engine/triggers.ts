/**
 * Triggers: a user-named event when a tag's good value does something. Contract:
 * - rising: the previous good value was falsy and this one is truthy (false -> true,
 *   0 -> non-zero; see truthy in values.ts); falling: the reverse; change: any change by
 *   value; value: the value becomes equal to the configured one (equal, or the same decimal
 *   text, so a 64-bit integer sent as text matches a number).
 * - Edges need two good values: nothing fires on first sight. The previous value is the last
 *   good one, so an edge across a bad period still fires.
 * - The event: type = trigger.event, subject = the tag name, topic class event, data
 *   { trigger: <tag name>, value, snapshot: { tag: value } } where the snapshot holds the
 *   configured tags' values from the same poll (see engine.ts).
 */
import type { TagValue } from "../events/sample.ts";
import type { TriggerRule } from "./types.ts";
import { sameValue, truthy } from "./values.ts";

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
