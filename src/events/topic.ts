/**
 * The MQTT topic of an event (PRODUCT.md, "Topics") and whether it is retained.
 *
 * Contract:
 * - The template (default `{base}/{site}/{area}/{line}/{equipment}/{class}/{name}`) is split
 *   at `/` into levels; placeholders are {base} {gateway} {site} {area} {line} {equipment}
 *   {device} {class} {name}. `{base}` may span several levels (`factory/plant`); every other
 *   value is exactly one level.
 * - Each substituted value is trimmed, and the MQTT wildcards `+ #`, `/`, NUL and whitespace in
 *   it become `_`, so a value can never add a level or a wildcard. The whole topic is lower
 *   case. Levels that end up empty are left out: no `//`, no leading or trailing `/`.
 * - `{name}` is the event's subject; `{class}` its topic class. `{equipment}` is the asset's
 *   equipment, else the device id, so two devices never share a topic; for gateway-level
 *   events (device = gateway id) it is only the asset's equipment, usually none.
 * - A topic never starts with `$` (reserved for broker topics such as $SYS): a leading `$`
 *   becomes `_`.
 * - Status and state topics are retained (the last state of a machine or a device is what a
 *   late subscriber needs); telemetry, event and quality topics are not.
 *
 * Command topics (commandTopic): `<base>/<site>/cmd/<gateway id>/<command>`, where the gateway
 * listens for requests (replay on request, issue 14). Not templated: a consumer finds them by
 * the gateway id alone. Levels are sanitized and lower-cased like an event topic's; `{base}` keeps
 * its own levels; no site, no site level.
 *
 * An unknown placeholder or a template that yields an empty topic throws a TypeError; the
 * config schema refuses such templates first.
 */
import type { GatewayEvent, TopicClass } from "./types.ts";

export interface TopicContext {
  /** The mqtt.base_topic; may contain `/`. */
  base: string;
  /** The gateway id. */
  gateway: string;
  /** The mqtt.topic_template. */
  template: string;
}

export const DEFAULT_TOPIC_TEMPLATE = "{base}/{site}/{area}/{line}/{equipment}/{class}/{name}";

const PLACEHOLDERS = [
  "base",
  "gateway",
  "site",
  "area",
  "line",
  "equipment",
  "device",
  "class",
  "name",
] as const;
type Placeholder = (typeof PLACEHOLDERS)[number];

/** A template level: literal text and placeholders, in order. */
type Part = { literal: string } | { placeholder: Placeholder };

const RETAINED: ReadonlySet<TopicClass> = new Set<TopicClass>(["status", "state"]);

const parsed = new Map<string, Part[][]>();

/** The topic `event` is published on. */
export function buildTopic(event: GatewayEvent, ctx: TopicContext): string {
  const values = placeholderValues(event, ctx);
  const levels: string[] = [];
  for (const parts of parseTemplate(ctx.template)) {
    // {base} alone on its level keeps its own levels.
    const only = parts.length === 1 ? parts[0] : undefined;
    if (only !== undefined && "placeholder" in only && only.placeholder === "base") {
      for (const level of ctx.base.split("/")) levels.push(sanitize(level));
      continue;
    }
    let level = "";
    for (const part of parts) {
      level += "literal" in part ? sanitize(part.literal) : sanitize(values[part.placeholder]);
    }
    levels.push(level);
  }
  const topic = levels
    .filter((l) => l !== "")
    .join("/")
    .toLowerCase()
    .replace(/^\$/, "_");
  if (topic === "") {
    throw new TypeError(`topic template ${JSON.stringify(ctx.template)} gives an empty topic`);
  }
  return topic;
}

/** The topic the gateway listens to for `command` (see the header). */
export function commandTopic(
  ctx: { base: string; site?: string | undefined; gateway: string },
  command: string,
): string {
  const levels = [
    ...ctx.base.split("/").map(sanitize),
    sanitize(ctx.site ?? ""),
    "cmd",
    sanitize(ctx.gateway),
    sanitize(command),
  ];
  return levels
    .filter((l) => l !== "")
    .join("/")
    .toLowerCase()
    .replace(/^\$/, "_");
}

/** Whether the event's topic is retained: status and state classes are. */
export function isRetained(event: GatewayEvent): boolean {
  return RETAINED.has(event.topicClass);
}

function placeholderValues(event: GatewayEvent, ctx: TopicContext): Record<Placeholder, string> {
  const gatewayLevel = event.device === ctx.gateway;
  return {
    // Only reached when {base} shares its level with other text: its `/` are then escaped.
    base: ctx.base,
    gateway: ctx.gateway,
    site: event.asset.site ?? "",
    area: event.asset.area ?? "",
    line: event.asset.line ?? "",
    equipment: event.asset.equipment ?? (gatewayLevel ? "" : event.device),
    device: event.device,
    class: event.topicClass,
    name: event.subject,
  };
}

/** One level's value: trimmed; wildcards, `/`, NUL and whitespace become `_`. */
function sanitize(value: string): string {
  return value.trim().replace(/[+#/\0\s]/g, "_");
}

function parseTemplate(template: string): Part[][] {
  const cached = parsed.get(template);
  if (cached !== undefined) return cached;
  const levels = template.split("/").map((level) => parseLevel(level, template));
  // Templates come from the config: a handful per process.
  if (parsed.size < 64) parsed.set(template, levels);
  return levels;
}

function parseLevel(level: string, template: string): Part[] {
  const parts: Part[] = [];
  const re = /\{([^{}]*)\}/g;
  let last = 0;
  for (const m of level.matchAll(re)) {
    const name = m[1] ?? "";
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      throw new TypeError(
        `topic template ${JSON.stringify(template)}: unknown placeholder {${name}}; known are ${PLACEHOLDERS.map((p) => `{${p}}`).join(" ")}`,
      );
    }
    if (m.index > last) parts.push({ literal: level.slice(last, m.index) });
    parts.push({ placeholder: name as Placeholder });
    last = m.index + m[0].length;
  }
  if (last < level.length) parts.push({ literal: level.slice(last) });
  return parts;
}
