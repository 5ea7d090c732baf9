/**
 * Whether the gateway is doing its job: the one verdict behind GET /healthz (200 or 503) and the
 * retained health message. assessHealth() is pure: snapshots in, summary out.
 *
 * The gateway is unhealthy when any of these holds (each adds a reason):
 * - The journal refuses writes: the last append failed (nothing new becomes durable).
 * - The broker is away for too long: MQTT is configured, not connected, and the journal holds
 *   more than `max_pending_events` unpublished events or its oldest one is older than
 *   `max_pending_age`. While connected the backlog is draining: never unhealthy for it, but
 *   degraded by the overload rules below when it is over the overload limits; a connected
 *   publisher that makes no progress is the watchdog's business (Gateway.alive).
 *   The age is taken from the event time, so a PLC clock far behind makes it look older.
 * - Devices, by `devices` policy. A device has a problem when it is disconnected or failed
 *   (its runner reported so), or when it is connected and polled but its last good or
 *   uncertain sample is older than `stale_polls` poll intervals (at least 2 s), counted from
 *   the connect when it never delivered one. A device still making its first connect attempt
 *   has none yet.
 *   Policy `all_down` (the default): unhealthy only when every configured device has a problem.
 *   One PLC switched off or unplugged is a plant problem, not a gateway one: restarting the
 *   gateway (what a failing health check usually triggers) cannot fix it, and the gateway keeps
 *   doing its job for every other device. It is listed in `devices[]` with its problem, and is
 *   visible as device status events and metrics. When every device is down, the likely cause
 *   is on the gateway's side (its network, its config), so that is reported as unhealthy.
 *   `any_down` makes each device problem count; `ignore` leaves devices out of the verdict.
 *
 * The gateway is degraded (200, `status: "degraded"`, the reasons in `degraded`) when it does
 * its job by its documented rules but not all of it: each part that can degrade adds its
 * reason (issue 12: a broker that is up but cannot keep pace, conflation, drops, events set
 * aside). Unhealthy wins over degraded. The overload rules (overloadReasons): a backlog over
 * the `overload` limits, connected or not (the broker takes events slower than they come, or is
 * away; with no broker, the journal takes them slower than they come); telemetry conflated now
 * or within `overload.degraded_for`; events dropped within `degraded_for` by the journal's size
 * policy or before the journal (the event sink's queue).
 *
 * Events set aside (the broker refused them for good; publish/set-aside.ts) degrade the
 * gateway while any of them was set aside in the last SET_ASIDE_DEGRADED_MS and is still set
 * aside: a `replay --set-aside` that gets them through clears it at once, otherwise it clears
 * ten minutes after the last one (they stay counted in /metrics and listed by `plc2mqtt events
 * --set-aside`). One reason per topic, latest first: "N events set aside: <topic>: <reason>".
 *
 * The summary is JSON in snake_case; ages are seconds, times ISO 8601.
 */
import type { GatewayConfig } from "../config/schema/root.ts";
import type { JournalStats } from "../journal/index.ts";
import { errorMessage } from "../lib/errors.ts";
import type { PublisherStats } from "../publish/index.ts";
import type { DeviceState } from "./device-watch.ts";
import type { OverloadHealth } from "./overload.ts";

export type HealthLimits = GatewayConfig["http"]["health"];

/** The staleness floor: polls faster than this are not judged on a finer scale. */
const MIN_STALE_MS = 2000;

export interface HealthInput {
  now: number;
  gateway: { id: string; version: string; startedAt: number };
  journal: JournalStats;
  /** The last append's failure, while appends fail. */
  appendError?: string;
  /** Events waiting to be appended. */
  queuedEvents: number;
  /** Undefined when no broker is configured. */
  publisher?: PublisherStats;
  devices: readonly DeviceState[];
  limits: HealthLimits;
  /** The overload stage's last look (overload.ts); absent in summaries made without one. */
  overload?: OverloadHealth;
  /** Events set aside and still kept; undefined when there are none. */
  setAside?: SetAsideHealth;
}

/** Events set aside, as the journal holds them. */
export interface SetAsideHealth {
  /** How many are set aside and kept. */
  total: number;
  /** The latest ones, newest first (a sample: the app reads a bounded number). */
  latest: readonly { topic: string; reason: string; at: number }[];
}

/** How long an event set aside keeps the gateway degraded (unless a replay clears it). */
export const SET_ASIDE_DEGRADED_MS = 10 * 60_000;
/** Topics named one by one in the degraded reasons; the rest are summed up. */
const SET_ASIDE_TOPICS_SHOWN = 3;

export interface DeviceHealth {
  id: string;
  status: DeviceState["status"];
  error?: string;
  last_good_read_age_s?: number;
  /** Why this device counts as a problem; absent when it has none. */
  problem?: string;
}

export interface HealthSummary {
  status: "ok" | "degraded" | "unhealthy";
  /** Why it is unhealthy; empty otherwise. */
  reasons: string[];
  /** Why it is degraded (also listed while unhealthy); empty when none. */
  degraded: string[];
  checked_at: string;
  gateway: { id: string; version: string; started_at: string; uptime_s: number };
  journal: {
    writable: boolean;
    error?: string;
    pending_events: number;
    oldest_pending_age_s?: number;
    queued_events: number;
    bytes: number;
  };
  mqtt?: {
    connected: boolean;
    in_flight: number;
    published: number;
    reconnects: number;
    last_error?: string;
  };
  devices: DeviceHealth[];
  overload?: OverloadSummary;
}

/** The overload part of the summary (see overloadReasons). */
export interface OverloadSummary {
  policy: OverloadHealth["policy"];
  /** Telemetry is being conflated now. */
  conflating: boolean;
  backlog_events: number;
  oldest_waited_s?: number;
  held_tags: number;
  conflated_recent: number;
  dropped_recent: { journal: number; queue: number };
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

export function assessHealth(input: HealthInput): HealthSummary {
  const { now, journal, publisher, limits } = input;
  const reasons: string[] = [];
  if (input.appendError !== undefined)
    reasons.push(`the journal refuses writes: ${input.appendError}`);
  const oldestAgeMs =
    journal.oldestPendingTime === undefined
      ? undefined
      : Math.max(0, now - journal.oldestPendingTime);
  if (publisher && !publisher.connected) {
    if (journal.pending > limits.max_pending_events)
      reasons.push(
        `the broker is unreachable and ${journal.pending} events wait (limit ${limits.max_pending_events})`,
      );
    if (oldestAgeMs !== undefined && oldestAgeMs > limits.max_pending_age)
      reasons.push(
        `the broker is unreachable and the oldest waiting event is ${seconds(oldestAgeMs)} s old (limit ${seconds(limits.max_pending_age)} s)`,
      );
  }
  // each part that can degrade adds its reason here
  const degraded: string[] = [];
  if (input.overload) degraded.push(...overloadReasons(input.overload, publisher?.connected));
  degraded.push(...setAsideReasons(input.setAside, now));
  const devices = input.devices.map((d) => deviceHealth(d, now, limits.stale_polls));
  const withProblem = devices.filter((d) => d.problem !== undefined);
  if (limits.devices === "any_down" && withProblem.length > 0)
    reasons.push(`${withProblem.length} of ${devices.length} devices have a problem`);
  if (limits.devices === "all_down" && devices.length > 0 && withProblem.length === devices.length)
    reasons.push(`all ${devices.length} devices have a problem`);
  return {
    status: reasons.length > 0 ? "unhealthy" : degraded.length > 0 ? "degraded" : "ok",
    reasons,
    degraded,
    checked_at: new Date(now).toISOString(),
    gateway: {
      id: input.gateway.id,
      version: input.gateway.version,
      started_at: new Date(input.gateway.startedAt).toISOString(),
      uptime_s: seconds(now - input.gateway.startedAt),
    },
    journal: {
      writable: input.appendError === undefined,
      ...(input.appendError === undefined ? {} : { error: input.appendError }),
      pending_events: journal.pending,
      ...(oldestAgeMs === undefined ? {} : { oldest_pending_age_s: seconds(oldestAgeMs) }),
      queued_events: input.queuedEvents,
      bytes: journal.bytes,
    },
    ...(publisher
      ? {
          mqtt: {
            connected: publisher.connected,
            in_flight: publisher.inFlight,
            published: publisher.published,
            reconnects: publisher.reconnects,
            ...(publisher.lastError === undefined ? {} : { last_error: publisher.lastError }),
          },
        }
      : {}),
    devices,
    ...(input.overload ? { overload: overloadSummary(input.overload) } : {}),
  };
}

/**
 * Degraded by the overload rules (config `overload`): a backlog over the overload limits (a
 * broker that is up but takes events slower than they come, one that is away, or a journal
 * that takes them slower than they come), telemetry conflated now or within `degraded_for`,
 * events dropped within `degraded_for` by the journal's size policy or by the event sink.
 */
export function overloadReasons(o: OverloadHealth, connected: boolean | undefined): string[] {
  const out: string[] = [];
  const s = o.settings;
  const window = `${seconds(s.degraded_for)} s`;
  const waited = o.backlog.waitedMs;
  if (o.backlog.events > s.max_pending_events || (waited ?? 0) > s.max_pending_age) {
    const wait =
      waited === undefined ? "" : `, the oldest waiting for the broker for ${seconds(waited)} s`;
    const limits = `(overload limits ${s.max_pending_events} events, ${seconds(s.max_pending_age)} s)`;
    const who = !o.broker
      ? "the journal takes events slower than they come"
      : connected
        ? "the broker takes events slower than they come"
        : "the broker is unreachable";
    out.push(`${who}: ${o.backlog.events} events wait${wait} ${limits}`);
  }
  if (o.overloaded || o.conflatedRecent > 0)
    out.push(
      `telemetry is conflated${o.overloaded ? " now" : ""}: at most one event per tag every ${seconds(s.telemetry_interval)} s, ${o.heldTags} tags held, ${o.conflatedRecent} changes folded into later events in the last ${window}`,
    );
  if (o.droppedRecent.journal > 0)
    out.push(
      `the journal's size policy dropped ${o.droppedRecent.journal} events in the last ${window}`,
    );
  if (o.droppedRecent.queue > 0)
    out.push(
      `${o.droppedRecent.queue} events were dropped before the journal in the last ${window} (queue full or refused; see the log)`,
    );
  return out;
}

function overloadSummary(o: OverloadHealth): OverloadSummary {
  return {
    policy: o.policy,
    conflating: o.overloaded,
    backlog_events: o.backlog.events,
    ...(o.backlog.waitedMs === undefined ? {} : { oldest_waited_s: seconds(o.backlog.waitedMs) }),
    held_tags: o.heldTags,
    conflated_recent: o.conflatedRecent,
    dropped_recent: o.droppedRecent,
  };
}

/** The degraded reasons of events set aside recently (see the header). */
function setAsideReasons(setAside: SetAsideHealth | undefined, now: number): string[] {
  if (setAside === undefined || setAside.total === 0) return [];
  const byTopic = new Map<string, { count: number; reason: string }>();
  for (const s of setAside.latest) {
    if (now - s.at > SET_ASIDE_DEGRADED_MS) continue;
    const topic = byTopic.get(s.topic);
    if (topic) topic.count += 1;
    else byTopic.set(s.topic, { count: 1, reason: s.reason });
  }
  const topics = [...byTopic.entries()];
  const plural = (n: number) => (n === 1 ? "1 event" : `${n} events`);
  const reasons = topics
    .slice(0, SET_ASIDE_TOPICS_SHOWN)
    .map(([topic, t]) => `${plural(t.count)} set aside: ${topic}: ${t.reason}`);
  const rest = topics.slice(SET_ASIDE_TOPICS_SHOWN);
  if (rest.length > 0) {
    const count = rest.reduce((sum, [, t]) => sum + t.count, 0);
    reasons.push(`${plural(count)} set aside on ${rest.length} more topic(s)`);
  }
  return reasons;
}

function deviceHealth(d: DeviceState, now: number, stalePolls: number): DeviceHealth {
  const out: DeviceHealth = { id: d.id, status: d.status };
  if (d.error !== undefined) out.error = d.error;
  if (d.lastGoodReadAt !== undefined)
    out.last_good_read_age_s = seconds(Math.max(0, now - d.lastGoodReadAt));
  if (d.status === "disconnected" || d.status === "failed") {
    out.problem = `${d.status}${d.error === undefined ? "" : `: ${d.error}`}`;
  } else if (d.status === "connected" && d.intervalMs !== undefined) {
    const limit = Math.max(MIN_STALE_MS, stalePolls * d.intervalMs);
    const since = Math.max(d.lastGoodReadAt ?? 0, d.since);
    if (now - since > limit)
      out.problem = `no good read for ${seconds(now - since)} s (limit ${seconds(limit)} s)`;
  }
  return out;
}

/** Remembers whether the last journal append failed: wrap each append in track(). */
export class AppendWatch {
  private lastError: string | undefined;

  get error(): string | undefined {
    return this.lastError;
  }

  async track<T>(append: Promise<T>): Promise<T> {
    try {
      const result = await append;
      this.lastError = undefined;
      return result;
    } catch (err) {
      this.lastError = errorMessage(err);
      throw err;
    }
  }
}
