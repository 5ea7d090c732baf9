/**
 * A replay request (issue 14, replay on request) read and judged: pure, no I/O, the clock passed
 * in. app/replay-requests.ts acts on the verdicts.
 *
 * The request body is a JSON object (at most MAX_REQUEST_BYTES):
 *   { "from": <time>, "to"?: <time>, "device"?: string, "tag"?: string, "type"?: string,
 *     "client_id"?: string, "secret"?: string }
 * - A time is an ISO 8601 date-time WITH its zone (`2026-03-01T08:00:00Z`,
 *   `2026-03-01T09:00:00.250+01:00`), or epoch milliseconds as a JSON number. A time without a
 *   zone is refused: the requester's local time is not the gateway's.
 * - `to` defaults to the moment the request is judged; `from` after `to` is a bad range.
 * - `tag` filters by the event's subject (the tag or trigger name), as `events --tag` does.
 * - The client id the request claims comes from `client_id` in the body or the user property
 *   `client_id`; when both are given they must agree. MQTT does not tell a subscriber who
 *   published: the claim is only as good as the broker ACL on the cmd topic (README).
 * - Unknown keys are refused (a typo must not widen a range silently).
 *
 * Authorization: every check the config sets must pass. allow_clients: the claimed id is in
 * the list. secret: the request's secret equals it, compared in constant time (both hashed
 * with SHA-256 first, so neither their lengths nor a common prefix show in the timing).
 *
 * Refusal reasons are stable codes (the answer's `reason`), with a sentence in `detail`:
 * bad_request, bad_range, unknown_client, bad_secret, too_many_events, busy, unavailable.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export const MAX_REQUEST_BYTES = 4096;

export type RefusalReason =
  | "bad_request"
  | "bad_range"
  | "unknown_client"
  | "bad_secret"
  | "too_many_events"
  | "busy"
  | "unavailable";

export interface Refusal {
  reason: RefusalReason;
  detail: string;
}

export interface ReplayRequestBody {
  from: number;
  to: number;
  device?: string;
  /** The tag or trigger name (the event's subject). */
  tag?: string;
  type?: string;
  clientId?: string;
  secret?: string;
}

export interface AccessRules {
  /** Empty: no allow-list. */
  allowClients: readonly string[];
  secret?: string;
}

const KEYS = new Set(["from", "to", "device", "tag", "type", "client_id", "secret"]);
/** A date-time with an explicit zone (Z or ±hh:mm). */
const ISO_WITH_ZONE =
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/i;
/** Date.parse's range: ±8.64e15 ms. */
const MAX_TIME = 8.64e15;

type Parsed = { ok: true; request: ReplayRequestBody } | ({ ok: false } & Refusal);

function bad(reason: RefusalReason, detail: string): { ok: false } & Refusal {
  return { ok: false, reason, detail };
}

/** Reads a request (see the header); `now` is the default of `to`. */
export function parseReplayRequest(
  payload: Buffer,
  userProperties: Readonly<Record<string, string | string[]>> | undefined,
  now: number,
): Parsed {
  if (payload.length > MAX_REQUEST_BYTES)
    return bad("bad_request", `the request is larger than ${MAX_REQUEST_BYTES} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(payload.toString("utf8"));
  } catch {
    return bad("bad_request", "the request is not JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return bad("bad_request", "the request must be a JSON object");
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !KEYS.has(k));
  if (unknown.length > 0)
    return bad(
      "bad_request",
      `unknown key(s) ${unknown.join(", ")}; known are ${[...KEYS].join(", ")}`,
    );

  if (fields.from === undefined) return bad("bad_request", "from is required");
  const from = parseTime(fields.from, "from");
  if (typeof from === "string") return bad("bad_request", from);
  const to = fields.to === undefined ? now : parseTime(fields.to, "to");
  if (typeof to === "string") return bad("bad_request", to);
  if (from > to) return bad("bad_range", "from is after to");

  const request: ReplayRequestBody = { from, to };
  for (const [key, field] of [
    ["device", "device"],
    ["tag", "tag"],
    ["type", "type"],
    ["secret", "secret"],
  ] as const) {
    const value = fields[key];
    if (value === undefined) continue;
    if (typeof value !== "string" || value === "" || value.length > 256)
      return bad("bad_request", `${key} must be a non-empty string of at most 256 characters`);
    request[field] = value;
  }
  const claimed = claimedClientId(fields.client_id, userProperties?.client_id);
  if (typeof claimed === "object") return bad("bad_request", claimed.error);
  if (claimed !== undefined) request.clientId = claimed;
  return { ok: true, request };
}

/** Every check the rules set must pass (see the header); undefined when all do. */
export function authorize(request: ReplayRequestBody, rules: AccessRules): Refusal | undefined {
  if (rules.allowClients.length > 0) {
    if (request.clientId === undefined)
      return { reason: "unknown_client", detail: "the request names no client_id" };
    if (!rules.allowClients.includes(request.clientId))
      return { reason: "unknown_client", detail: "this client_id is not allowed to ask" };
  }
  if (rules.secret !== undefined) {
    if (request.secret === undefined)
      return { reason: "bad_secret", detail: "the request carries no secret" };
    if (!sameSecret(request.secret, rules.secret))
      return { reason: "bad_secret", detail: "the secret does not match" };
  }
  return undefined;
}

/** Constant time in the secrets' content and length. */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}

function parseTime(value: unknown, name: string): number | string {
  if (typeof value === "number") {
    if (!Number.isInteger(value) || Math.abs(value) > MAX_TIME)
      return `${name}: epoch milliseconds must be an integer`;
    return value;
  }
  if (typeof value !== "string")
    return `${name} must be an ISO 8601 date-time with its zone or epoch milliseconds`;
  const ms = ISO_WITH_ZONE.test(value) && fieldsInRange(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    return `${name}: ${JSON.stringify(value.slice(0, 40))} is not an ISO 8601 date-time with its zone (such as 2026-03-01T08:00:00Z)`;
  return ms;
}

/** Date.parse rolls 2026-02-31 over into March: every field must be in its range. */
function fieldsInRange(text: string): boolean {
  const [y, mo, d, h, mi, sec = 0] = (text.match(/\d+/g) ?? []).map(Number) as number[];
  if (y === undefined || mo === undefined || d === undefined) return false;
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate(); // the month's last day
  return (
    mo >= 1 && mo <= 12 && d >= 1 && d <= days && (h ?? 0) <= 23 && (mi ?? 0) <= 59 && sec <= 59
  );
}

function claimedClientId(
  body: unknown,
  property: string | string[] | undefined,
): string | undefined | { error: string } {
  if (Array.isArray(property)) return { error: "the user property client_id is given twice" };
  if (body !== undefined && (typeof body !== "string" || body === "" || body.length > 256))
    return { error: "client_id must be a non-empty string of at most 256 characters" };
  if (body !== undefined && property !== undefined && body !== property)
    return { error: "client_id in the body and the user property client_id differ" };
  return (body as string | undefined) ?? property;
}
