/**
 * Semantic checks of a device's engine rules (src/config/schema/rules.ts), whatever its
 * protocol: the protocol's checks describe each tag as a RuleTag (value kind, width, poll
 * interval) and this module judges the rules against it. Contract: pure; returns every
 * issue, each at the config path of the node at fault relative to the device (the caller
 * prefixes `devices[i]`):
 * - `context` and `trigger.snapshot` name tags of the same device (a close name is
 *   suggested);
 * - `states` only on integer or bool tags, keyed by values the tag can have; `alarms` only
 *   on unscaled integer tags, with bits inside its width; never both on one tag;
 * - `range` and `deadband` only on numeric tags; an absolute deadband inside the range;
 * - `trigger.on: rising|falling` only on bool or integer tags; `trigger.value` a value the
 *   tag can have;
 * - no `states`, `alarms` or `trigger` on an array tag (an OPC UA `double[]`): an array has
 *   no state, no alarm bits and no edge (issue 11.11);
 * - `heartbeat` no shorter than the poll interval or `min_interval`; `stale_after` (the
 *   tag's or the device's) longer than the poll interval.
 * A tag whose kind is unknown (it failed its own checks) is only checked by name.
 */
import { distance as editDistance } from "fastest-levenshtein";
import type { z } from "zod";
import type { CheckIssue } from "./check-modbus.ts";
import type { PathSegment } from "./errors.ts";
import type { tagRuleFields } from "./schema/rules.ts";
import { formatDuration } from "./units.ts";

/** What a tag's value is, as the engine sees it (after scaling). */
export type ValueKind = "integer" | "float" | "bool" | "string" | "json";

/** A tag's rule fields, as the schema gives them. */
export type TagRules = z.output<z.ZodObject<typeof tagRuleFields>>;

/** A device's rule fields. */
export interface DeviceRules {
  stale_after?: number | undefined;
  context: readonly string[];
}

/** One tag as the rule checks see it; protocol checks build these. */
export interface RuleTag {
  /** Position in the YAML's tag list: issues go to `tags[index]`. */
  index: number;
  name: string;
  /** Undefined when the tag failed its own checks: only its name is used. */
  kind?: ValueKind;
  /** The protocol's name of the type, for messages (`float32`, `int16 with scale/offset`). */
  type?: string;
  /** Integers read as a raw word: its width in bits (alarm bits must fit). */
  bits?: number;
  /** With bits: whether the word is signed (state keys must fit). */
  signed?: boolean;
  /** The value is an array (an OPC UA array type): no states, alarms or trigger. */
  array?: boolean;
  /** How often the tag is read, in ms; undefined for subscribed tags. */
  pollInterval?: number;
  rules: TagRules;
}

const EDGES = new Set(["rising", "falling"]);

/**
 * `yamlNames`: every tag name the YAML gives, when some tags failed the schema and are not in
 * `tags`: a reference to one of those is not reported as unknown (its own issue is enough).
 */
export function checkRules(
  device: DeviceRules,
  tags: readonly RuleTag[],
  opts: { yamlNames?: readonly string[] } = {},
): CheckIssue[] {
  const issues: CheckIssue[] = [];
  const names = [...new Set([...tags.map((tag) => tag.name), ...(opts.yamlNames ?? [])])];
  for (const [i, name] of device.context.entries()) {
    const unknown = unknownTag("context", name, names);
    if (unknown !== undefined) issues.push({ path: ["context", i], message: unknown });
  }
  for (const tag of tags) issues.push(...checkTag(tag, names));
  issues.push(...deviceStaleness(device, tags));
  return issues;
}

function checkTag(tag: RuleTag, names: readonly string[]): CheckIssue[] {
  const issues: CheckIssue[] = [];
  const at = (...path: PathSegment[]) => ["tags", tag.index, ...path];
  const add = (path: PathSegment[], message: string) => issues.push({ path, message });
  const { rules, kind } = tag;
  for (const [i, name] of (rules.trigger?.snapshot ?? []).entries()) {
    const unknown = unknownTag("snapshot", name, names);
    if (unknown !== undefined) add(at("trigger", "snapshot", i), unknown);
  }
  issues.push(...timing(tag));
  if (kind === undefined) return issues;
  const type = tag.type ?? kind;
  const numeric = kind === "integer" || kind === "float";
  if (tag.array === true) issues.push(...arrayRules(tag, type));
  else issues.push(...stateAlarmTrigger(tag, type));
  if (rules.range !== undefined && !numeric) {
    add(at("range"), `range needs a numeric tag, not ${type}`);
  }
  if (rules.deadband !== undefined) {
    if (!numeric) add(at("deadband"), `deadband needs a numeric tag, not ${type}`);
    else if (rules.range !== undefined) {
      const { min, max } = rules.range;
      const band =
        "absolute" in rules.deadband
          ? rules.deadband.absolute
          : (rules.deadband.percent / 100) * (max - min);
      if (band >= max - min) {
        const key = "absolute" in rules.deadband ? "absolute" : "percent";
        add(
          at("deadband", key),
          `the deadband is as wide as the range ${min}..${max}: no change would ever be reported`,
        );
      }
    }
  }
  return issues;
}

/** An array value has no state, no alarm bits and no edge or match. */
function arrayRules(tag: RuleTag, type: string): CheckIssue[] {
  const at = (key: string) => ["tags", tag.index, key];
  const array = `the array type ${type}`;
  const issues: CheckIssue[] = [];
  if (tag.rules.states !== undefined)
    issues.push({
      path: at("states"),
      message: `states need a scalar integer or bool tag, not ${array}: an array has no state`,
    });
  if (tag.rules.alarms !== undefined)
    issues.push({
      path: at("alarms"),
      message: `alarms need a scalar integer tag (an alarm word), not ${array}`,
    });
  if (tag.rules.trigger !== undefined)
    issues.push({
      path: at("trigger"),
      message: `a trigger needs a scalar tag, not ${array}: an array never rises, falls or equals a value`,
    });
  return issues;
}

/** states, alarms and trigger of a scalar tag against its kind and width. */
function stateAlarmTrigger(tag: RuleTag, type: string): CheckIssue[] {
  const issues: CheckIssue[] = [];
  const at = (...path: PathSegment[]) => ["tags", tag.index, ...path];
  const add = (path: PathSegment[], message: string) => issues.push({ path, message });
  const { rules, kind } = tag;
  if (rules.states !== undefined) {
    if (kind !== "integer" && kind !== "bool") {
      add(at("states"), `states need an integer or bool tag, not ${type}`);
    } else {
      for (const key of Object.keys(rules.states)) {
        const wrong = wrongValue(tag, key);
        if (wrong !== undefined) add(at("states", key), wrong);
      }
    }
  }
  if (rules.alarms !== undefined) {
    if (rules.states !== undefined) {
      add(at("alarms"), "give states or alarms, not both");
    } else if (kind !== "integer") {
      add(at("alarms"), `alarms need an integer tag (an alarm word), not ${type}`);
    } else if (tag.bits === undefined) {
      add(at("alarms"), `alarms need the raw word, not ${type}`);
    } else {
      for (const key of Object.keys(rules.alarms)) {
        if (Number(key) >= tag.bits) {
          add(
            at("alarms", key),
            `bit ${key} does not exist in ${a(type)} (bits 0 to ${tag.bits - 1})`,
          );
        }
      }
    }
  }
  const trigger = rules.trigger;
  if (trigger !== undefined) {
    if (EDGES.has(trigger.on) && kind !== "integer" && kind !== "bool") {
      add(at("trigger", "on"), `on: ${trigger.on} needs a bool or integer tag, not ${type}`);
    }
    if (trigger.on === "value" && trigger.value !== undefined) {
      const wrong = wrongTriggerValue(tag, trigger.value);
      if (wrong !== undefined) add(at("trigger", "value"), wrong);
    }
  }
  return issues;
}

/** heartbeat against the poll interval and min_interval; the tag's own stale_after. */
function timing(tag: RuleTag): CheckIssue[] {
  const issues: CheckIssue[] = [];
  const { heartbeat, min_interval: minInterval, stale_after: staleAfter } = tag.rules;
  const poll = tag.pollInterval;
  const at = (key: string) => ["tags", tag.index, key];
  if (heartbeat !== undefined && poll !== undefined && heartbeat < poll) {
    issues.push({
      path: at("heartbeat"),
      message: `heartbeat ${formatDuration(heartbeat)} is shorter than the tag's poll interval ${formatDuration(poll)}: it would re-send the same reading between polls; make it at least ${formatDuration(poll)}`,
    });
  } else if (heartbeat !== undefined && minInterval !== undefined && heartbeat < minInterval) {
    issues.push({
      path: at("heartbeat"),
      message: `heartbeat ${formatDuration(heartbeat)} is shorter than min_interval ${formatDuration(minInterval)}, which holds telemetry back; make it at least ${formatDuration(minInterval)}`,
    });
  }
  if (staleAfter !== undefined && poll !== undefined && staleAfter <= poll) {
    issues.push({
      path: at("stale_after"),
      message: `stale_after ${formatDuration(staleAfter)} is not longer than the tag's poll interval ${formatDuration(poll)}: the tag would turn stale between polls`,
    });
  }
  return issues;
}

/** The device's stale_after against the slowest tag that has no stale_after of its own. */
function deviceStaleness(device: DeviceRules, tags: readonly RuleTag[]): CheckIssue[] {
  const staleAfter = device.stale_after;
  if (staleAfter === undefined) return [];
  let slowest: RuleTag | undefined;
  for (const tag of tags) {
    if (tag.rules.stale_after !== undefined || tag.pollInterval === undefined) continue;
    if (slowest === undefined || tag.pollInterval > (slowest.pollInterval ?? 0)) slowest = tag;
  }
  const poll = slowest?.pollInterval;
  if (slowest === undefined || poll === undefined || staleAfter > poll) return [];
  return [
    {
      path: ["stale_after"],
      message: `stale_after ${formatDuration(staleAfter)} is not longer than the poll interval ${formatDuration(poll)} of tag "${slowest.name}": it would turn stale between polls (give that tag its own stale_after)`,
    },
  ];
}

/** Why a state key can never match the tag's value, or undefined when it can. */
function wrongValue(tag: RuleTag, key: string): string | undefined {
  if (tag.kind === "bool") {
    return key === "true" || key === "false"
      ? undefined
      : `a bool tag's states are keyed true and false`;
  }
  if (key === "true" || key === "false") return `${a(tag.type ?? "integer")} tag is never ${key}`;
  const value = BigInt(key);
  if (value.toString() !== key) return `the key ${key} never matches: write ${value}`;
  return outsideWidth(tag, value);
}

function outsideWidth(tag: RuleTag, value: bigint): string | undefined {
  if (tag.bits === undefined) return undefined;
  const bits = BigInt(tag.bits);
  const [low, high] = tag.signed
    ? [-(2n ** (bits - 1n)), 2n ** (bits - 1n) - 1n]
    : [0n, 2n ** bits - 1n];
  if (value >= low && value <= high) return undefined;
  return `${a(tag.type ?? "integer")} is never ${value} (its values are ${low} to ${high})`;
}

/** Why `on: value` can never fire on this tag, or undefined when it can. */
function wrongTriggerValue(tag: RuleTag, value: number | string | boolean): string | undefined {
  const type = tag.type ?? tag.kind;
  const never = `${a(String(type))} tag is never ${JSON.stringify(value)}`;
  switch (tag.kind) {
    case "bool":
      return typeof value === "boolean" ? undefined : `${never}: write true or false`;
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) return never;
      return outsideWidth(tag, BigInt(value));
    case "float":
      return typeof value === "number" ? undefined : never;
    case "string":
      return typeof value === "string" ? undefined : `${never}: write the text in quotes`;
    default:
      return undefined;
  }
}

/** "a uint16", "an int16". */
function a(type: string): string {
  return /^[aeio]/.test(type) ? `an ${type}` : `a ${type}`;
}

function unknownTag(what: string, name: string, names: readonly string[]): string | undefined {
  if (names.includes(name)) return undefined;
  const close = closest(name, names);
  const hint = close === undefined ? "" : ` (did you mean "${close}"?)`;
  return `${what} tag "${name}" is not a tag of this device${hint}`;
}

/**
 * The name nearest to `name` by edit distance (ignoring case) when one is close enough to be
 * a typo, else one that starts with it or that it starts with (`batch` for `batch_id`).
 */
export function closest(name: string, names: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  // Up to one edit per three characters (at most 3): a short name is too close to anything.
  let bestDistance = Math.min(3, Math.floor(name.length / 3)) + 1;
  for (const candidate of names) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined || lower.length < 3) return best;
  return names.find((candidate) => {
    const other = candidate.toLowerCase();
    return other.length >= 3 && (other.startsWith(lower) || lower.startsWith(other));
  });
}
