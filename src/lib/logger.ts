/**
 * The one logger: pino, an object first and a constant message, one child per part.
 *
 * Guarantees of a logger made by `createLogger`:
 * - Secrets never reach a line. Fields named like secrets (REDACT_PATHS) are replaced by
 *   "[redacted]" wherever they sit; on top of that every value in `secrets` (the resolved
 *   passwords of the config) is cut out of the finished line, wherever it appears (an error
 *   message, a URL), in its raw and its JSON-escaped form. Values shorter than
 *   MIN_SECRET_LENGTH are left to path redaction: cutting them would mangle unrelated text.
 * - Repeats are throttled when `repeatIntervalMs` is set: a warning or error with the same
 *   message from the same source (device and part) about the same tag is logged at most once
 *   per interval; the next line after the interval carries `suppressed: <repeats held back>`.
 *   The first occurrence of a problem always passes: an info line of a source ("device
 *   connected", "MQTT connected") ends that source's problems, so the first warning of its
 *   next outage is logged at once (issue 13.7). Info lines are seen for this even when the
 *   level is warn or error (they are then counted, not written). Audit lines (`audit` field)
 *   and fatal lines always pass. See log-throttle.ts.
 * - A key is never written twice on one line: a field of the call's object that a child
 *   logger already binds with the same value (a driver logging `{ device }` through its
 *   runner's child logger bound to that device) is left out of the object (issue 13.7).
 * - Format: `json` (one JSON object a line, for journald) or `pretty` (pino-pretty, coloured
 *   when the destination is a terminal). Redaction and throttling apply to both.
 */

import { createRequire } from "node:module";
import { isatty } from "node:tty";
import { pino } from "pino";
import type PinoPretty from "pino-pretty";
import { RepeatThrottle } from "./log-throttle.ts";

export type Logger = pino.Logger;
export type LogFormat = "json" | "pretty";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Paths pino removes from every log line: passwords, keys and tokens never reach a log. */
export const REDACT_PATHS = [
  "password",
  "*.password",
  "*.*.password",
  "passphrase",
  "*.passphrase",
  "key",
  "*.key",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "authorization",
  "*.authorization",
];

export const MIN_SECRET_LENGTH = 4;
const CENSOR = "[redacted]";
const SECRET_KEYS = new Set(["password", "passphrase", "token", "secret", "authorization"]);
const INFO = 30;
const WARN = 40;
const FATAL = 60;

export interface LoggerOptions {
  level?: string;
  /** A stream, or a file descriptor: 1 stdout (the daemon, for journald), 2 stderr (default). */
  destination?: pino.DestinationStream | 1 | 2;
  /** Default json. */
  format?: LogFormat;
  /** Resolved secret values cut out of every line. The caller may add to the set later. */
  secrets?: ReadonlySet<string>;
  /** Same warning or error at most once per this many ms; off when absent or 0. */
  repeatIntervalMs?: number;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const secrets = options.secrets;
  const level = options.level ?? "info";
  // an unknown level is left to pino (it throws); silent needs no throttle
  const levelValue = pino.levels.values[level];
  const throttle =
    options.repeatIntervalMs !== undefined &&
    options.repeatIntervalMs > 0 &&
    Number.isFinite(levelValue)
      ? new RepeatThrottle({ intervalMs: options.repeatIntervalMs })
      : undefined;
  return pino(
    {
      // with a throttle, info lines are always seen (they end problems; see the header)
      level: throttle && levelValue !== undefined && levelValue > INFO ? "info" : level,
      base: { name: "plc2mqtt" },
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: {
        logMethod: logMethodHook(throttle, levelValue ?? 0),
        ...(secrets ? { streamWrite: (line: string) => scrub(line, secrets) } : {}),
      },
    },
    destinationFor(options),
  );
}

function destinationFor(options: LoggerOptions): pino.DestinationStream {
  const { destination } = options;
  if (typeof destination === "object") return destination;
  const fd = destination ?? 2;
  if (options.format === "pretty") {
    // loaded only when asked for: the daemon logs JSON, and every module costs start-up time
    const pretty = createRequire(import.meta.url)("pino-pretty") as typeof PinoPretty;
    return pretty({
      destination: fd,
      colorize: isatty(fd),
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname,name",
      sync: true,
    });
  }
  return pino.destination({ dest: fd, sync: false });
}

/**
 * pino's logMethod hook: leaves out fields the child's bindings already hold, and decides per
 * call whether the line is a repeat to hold back. The key is level, message, the `device` and
 * `part` of the call or of the child's bindings (the source), and the call's `tag`.
 */
function logMethodHook(throttle: RepeatThrottle | undefined, levelValue: number) {
  return function logMethod(
    this: Logger,
    args: Parameters<pino.LogFn>,
    method: pino.LogFn,
    level: number,
  ): void {
    const [first, ...rest] = args as unknown[];
    const bound = boundFields(this);
    const given = typeof first === "object" && first !== null ? first : undefined;
    const fields = given === undefined ? undefined : withoutBound(given, bound);
    const call = fields === given ? args : ([fields, ...rest] as Parameters<pino.LogFn>);
    const message = fields === undefined ? first : rest[0];
    if (!throttle) {
      method.apply(this, call);
      return;
    }
    const device = field(fields, "device") ?? bound.device;
    const source = `${String(device ?? "")}\u0000${String(bound.part ?? "")}`;
    if (level === INFO) throttle.recovered(source);
    if (level < levelValue) return; // seen for the throttle only
    if (level < WARN || level >= FATAL || typeof message !== "string" || isAudit(fields)) {
      method.apply(this, call);
      return;
    }
    const tag = field(fields, "tag") ?? bound.tag;
    const key = `${level}\u0000${message}\u0000${source}\u0000${String(tag ?? "")}`;
    const verdict = throttle.check(key, Date.now(), source);
    if (verdict === false) return;
    if (verdict === 0) {
      method.apply(this, call);
      return;
    }
    const base = fields instanceof Error ? { err: fields } : (fields ?? {});
    const tail = fields === undefined ? rest : rest.slice(1);
    (method as (...a: unknown[]) => void).apply(this, [
      { ...base, suppressed: verdict },
      message,
      ...tail,
    ]);
  };
}

/** A logger's bindings, parsed once per set of bindings. */
const bindingsCache = new WeakMap<Logger, { chindings: unknown; bindings: pino.Bindings }>();

function boundFields(log: Logger): pino.Bindings {
  const chindings = (log as unknown as Record<symbol, unknown>)[pino.symbols.chindingsSym];
  const cached = bindingsCache.get(log);
  if (cached !== undefined && cached.chindings === chindings) return cached.bindings;
  const bindings = log.bindings();
  bindingsCache.set(log, { chindings, bindings });
  return bindings;
}

/** The call's object without the fields the bindings hold with the same value (or itself). */
function withoutBound(fields: object, bound: pino.Bindings): object {
  if (fields instanceof Error) return fields;
  const record = fields as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(bound)) {
    if (!Object.hasOwn(record, key) || record[key] !== bound[key]) continue;
    out ??= { ...record };
    delete out[key];
  }
  return out ?? fields;
}

function isAudit(fields: object | undefined): boolean {
  return field(fields, "audit") !== undefined;
}

function field(fields: object | undefined, name: string): unknown {
  if (fields === undefined || fields instanceof Error) return undefined;
  return (fields as Record<string, unknown>)[name];
}

/** Cuts every secret out of a finished line, raw and as it looks inside a JSON string. */
export function scrub(line: string, secrets: ReadonlySet<string>): string {
  let out = line;
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    const escaped = JSON.stringify(secret).slice(1, -1);
    out = out.replaceAll(escaped, CENSOR);
    if (escaped !== secret) out = out.replaceAll(secret, CENSOR);
  }
  return out;
}

/**
 * The string values under secret-named keys (password, passphrase, token, secret,
 * authorization) anywhere in a value: what `secrets` should hold for a resolved config.
 */
export function secretValuesIn(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const item of value) secretValuesIn(item, into);
  } else if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (SECRET_KEYS.has(key.toLowerCase()) && typeof item === "string" && item !== "")
        into.add(item);
      else secretValuesIn(item, into);
    }
  }
  return into;
}

/** A logger that drops everything: for library use and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
