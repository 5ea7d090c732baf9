/**
 * The overload stage: between the engine's output and the event sink, it decides what the
 * gateway keeps when the plant changes faster than the broker takes events (config
 * `overload`). It holds no I/O of its own: it looks at the backlog (backlog.ts) on a timer and
 * passes events on to `out` (the sink), so polls and subscriptions never wait for it.
 *
 * Overloaded: the backlog is over `max_pending_events` events or its oldest event has waited
 * longer than `max_pending_age`; it stays so until both are back under half their limit. While
 * the broker is unreachable, only the events waiting to be journaled count: an outage is not
 * an overload, the journal keeps every event of it (its size policy is the limit); once the
 * broker is back, what waits for it counts again, so telemetry is conflated while a large
 * backlog drains. With policy `conflate`, while overloaded:
 * - A telemetry event of a tag whose last telemetry went out less than `telemetry_interval` ago
 *   is held; a newer one of the same tag replaces it and the count of changes it stands for
 *   grows. A held event goes out once its tag's interval has passed, or when the overload
 *   ends, or before the next non-telemetry event of its tag, or at stop(). It goes out with its
 *   own (latest) value and time, `previous` the value published before the run it stands for,
 *   and `data.conflated` the number of changes it stands for when that is 2 or more.
 * - Everything that is not telemetry (states, alarms, triggers, quality, device and gateway
 *   status) passes at once, in order: never held, never dropped.
 * Policy `keep` never holds anything; the backlog is still watched for health.
 *
 * Invariants:
 * - Per tag order: the events of one (device, tag) leave in the order they came. A held
 *   telemetry event leaves before any later event with its device and subject (quality), before
 *   a trigger event whose snapshot names its tag, and before a status event of its device.
 * - Nothing is lost without a count: every telemetry event that came in leaves, either itself
 *   or folded into a later one of its tag that counts it in `data.conflated` and in `conflated`
 *   (per device: changes folded away = telemetry in - telemetry out).
 * - Not overloaded, nothing is held: events pass through untouched.
 */
import type { OverloadConfig } from "../config/schema/overload.ts";
import { EVENT_TYPES, type GatewayEvent, type JsonValue } from "../events/types.ts";
import type { JournalStats } from "../journal/index.ts";
import type { Logger } from "../lib/logger.ts";
import { type Backlog, BacklogWatch, RecentCount } from "./backlog.ts";

export interface OverloadOptions {
  settings: OverloadConfig;
  /** The journal's stats when a broker is configured; undefined without one. */
  journal: () => Pick<JournalStats, "pending" | "lastSequence" | "dropped"> | undefined;
  /** Whether the broker is connected (ignored without one). */
  connected: () => boolean;
  /** Events waiting to be journaled (the sink's queue). */
  queued: () => number;
  /** Events the sink dropped so far (queue full, or refused by the journal). */
  queueDropped: () => number;
  /** Where events go on: the event sink. */
  out: (events: GatewayEvent[]) => void;
  now: () => number;
  log: Logger;
}

/** What health needs to know (see health.ts, overloadReasons). */
export interface OverloadHealth {
  policy: OverloadConfig["policy"];
  settings: OverloadConfig;
  /** Whether a broker is configured. */
  broker: boolean;
  overloaded: boolean;
  backlog: Backlog;
  heldTags: number;
  /** Telemetry changes folded into later events within `degraded_for`. */
  conflatedRecent: number;
  /** Events dropped within `degraded_for`: by the journal's size policy, by the sink. */
  droppedRecent: { journal: number; queue: number };
}

export interface OverloadStats {
  overloaded: boolean;
  heldTags: number;
  /** Telemetry changes folded into a later event of their tag, by device, since start. */
  conflated: ReadonlyMap<string, number>;
  queueDropped: number;
}

/** The finest step of the backlog's wait (backlog.ts coarsens it for a long backlog). */
const BACKLOG_RESOLUTION_MS = 100;

/**
 * One tag's conflation state, made the first time the tag is seen overloaded and then kept,
 * moved in place (issue 12: at 100,000 changes a second a Map entry per event and an object per
 * held run were copied to V8's old generation, and two Map lookups per event cost more than
 * one).
 */
interface TagSlot {
  /** When its last telemetry went out during this overload; -Infinity when none did. */
  outAt: number;
  /** The telemetry event held, undefined when none is. */
  latest: GatewayEvent | undefined;
  /** Changes the held event stands for. */
  count: number;
  /** `previous` of the first event held: the value published before the run. */
  previous: JsonValue;
}

export class OverloadStage {
  private readonly options: OverloadOptions;
  private readonly settings: OverloadConfig;
  private readonly watch: BacklogWatch;
  private readonly recentConflated: RecentCount;
  private readonly recentJournalDrops: RecentCount;
  private readonly recentQueueDrops: RecentCount;
  private overloaded = false;
  /** device -> tag -> its conflation state. */
  private readonly slots = new Map<string, Map<string, TagSlot>>();
  private heldCount = 0;
  private readonly conflated = new Map<string, number>();
  private conflatedTotal = 0;
  private last: OverloadHealth;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: OverloadOptions) {
    this.options = options;
    this.settings = options.settings;
    const s = this.settings;
    this.watch = new BacklogWatch(BACKLOG_RESOLUTION_MS);
    this.recentConflated = new RecentCount(s.degraded_for);
    this.recentJournalDrops = new RecentCount(s.degraded_for);
    this.recentQueueDrops = new RecentCount(s.degraded_for);
    this.last = {
      policy: s.policy,
      settings: s,
      broker: false,
      overloaded: false,
      backlog: { events: 0 },
      heldTags: 0,
      conflatedRecent: 0,
      droppedRecent: { journal: 0, queue: 0 },
    };
  }

  /** How often the backlog is looked at: a quarter of the interval, between 10 and 250 ms. */
  get checkIntervalMs(): number {
    return Math.max(10, Math.min(250, this.settings.telemetry_interval / 4));
  }

  start(): void {
    this.assess();
    this.timer ??= setInterval(() => this.assess(), this.checkIntervalMs);
    this.timer.unref();
  }

  /** Stops looking and lets every held event go out (before the sink stops). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.releaseAll();
  }

  push(events: readonly GatewayEvent[]): void {
    if (events.length === 0) return;
    if (!this.overloaded) {
      this.options.out(events as GatewayEvent[]);
      return;
    }
    const now = this.options.now();
    const interval = this.settings.telemetry_interval;
    const batch: GatewayEvent[] = [];
    // events come in runs of one device: its maps are looked up once a run, and its count of
    // changes folded is added at the run's end (issue 12: 100,000 changes a second)
    let device: string | undefined;
    let tags: Map<string, TagSlot> = new Map();
    let folded = 0;
    const fold = () => {
      if (folded === 0 || device === undefined) return;
      this.conflated.set(device, (this.conflated.get(device) ?? 0) + folded);
      folded = 0;
    };
    for (const event of events) {
      if (event.type !== EVENT_TYPES.telemetry) {
        this.releaseBefore(event, now, batch);
        batch.push(event);
        continue;
      }
      if (event.device !== device) {
        fold();
        device = event.device;
        tags = this.tagsOf(device);
      }
      let slot = tags.get(event.subject);
      if (slot === undefined) {
        slot = { outAt: Number.NEGATIVE_INFINITY, latest: undefined, count: 0, previous: null };
        tags.set(event.subject, slot);
      }
      const held = slot.latest;
      if (held !== undefined) {
        if (!absorb(held, event)) slot.latest = event;
        slot.count++;
        this.conflatedTotal++;
        folded++;
        continue;
      }
      if (now - slot.outAt < interval) {
        slot.latest = event;
        slot.count = 1;
        slot.previous = event.data.previous ?? null;
        this.heldCount++;
        continue;
      }
      slot.outAt = now;
      batch.push(event);
    }
    fold();
    if (batch.length > 0) this.options.out(batch);
  }

  /** The tag slots of `device`, made when it has none. */
  private tagsOf(device: string): Map<string, TagSlot> {
    let tags = this.slots.get(device);
    if (tags === undefined) {
      tags = new Map();
      this.slots.set(device, tags);
    }
    return tags;
  }

  /** Looks at the backlog: starts or ends the overload, lets due held events go out. */
  assess(): void {
    const now = this.options.now();
    const journal = this.options.journal();
    const queued = this.options.queued();
    const backlog = this.watch.look(now, queued, journal);
    const s = this.settings;
    // a broker that is away takes nothing: the journal keeps every event of the outage (its
    // size policy is the limit); what waits for it counts again once it is back
    const away = journal !== undefined && !this.options.connected();
    const events = away ? queued : backlog.events;
    const waited = away ? 0 : (backlog.waitedMs ?? 0);
    const over = events > s.max_pending_events || waited > s.max_pending_age;
    const under = events <= s.max_pending_events / 2 && waited <= s.max_pending_age / 2;
    if (s.policy === "conflate" && !this.overloaded && over) {
      this.overloaded = true;
      this.options.log.warn(
        { events: backlog.events, waited_ms: backlog.waitedMs },
        "overloaded: conflating telemetry",
      );
    } else if (this.overloaded && under) {
      this.overloaded = false;
      this.releaseAll();
      this.options.log.info(
        { events: backlog.events, conflated: this.conflatedTotal },
        "overload over: telemetry flows unconflated",
      );
    }
    if (this.overloaded) this.releaseDue(now);
    this.last = {
      policy: s.policy,
      settings: s,
      broker: journal !== undefined,
      overloaded: this.overloaded,
      backlog,
      heldTags: this.heldCount,
      conflatedRecent: this.recentConflated.look(now, this.conflatedTotal),
      droppedRecent: {
        journal: journal === undefined ? 0 : this.recentJournalDrops.look(now, journal.dropped),
        queue: this.recentQueueDrops.look(now, this.options.queueDropped()),
      },
    };
  }

  /** The last assessment (at most one check interval old), with the tags held now. */
  health(): OverloadHealth {
    return { ...this.last, heldTags: this.heldCount };
  }

  stats(): OverloadStats {
    return {
      overloaded: this.overloaded,
      heldTags: this.heldCount,
      conflated: this.conflated,
      queueDropped: this.options.queueDropped(),
    };
  }

  /** Takes the event held in `slot` out into `batch`, when there is one; `now` its time out. */
  private take(slot: TagSlot | undefined, now: number, batch: GatewayEvent[]): void {
    if (slot?.latest === undefined) return;
    batch.push(released(slot));
    slot.latest = undefined;
    slot.outAt = now;
    this.heldCount--;
  }

  /** What must go out before a non-telemetry event, to keep per-tag order. */
  private releaseBefore(event: GatewayEvent, now: number, batch: GatewayEvent[]): void {
    if (this.heldCount === 0) return;
    const tags = this.slots.get(event.device);
    if (tags === undefined) return;
    if (event.type === EVENT_TYPES.deviceStatus) {
      for (const slot of tags.values()) this.take(slot, now, batch);
      return;
    }
    this.take(tags.get(event.subject), now, batch);
    const snapshot = event.data.snapshot;
    if (snapshot !== null && typeof snapshot === "object" && !Array.isArray(snapshot))
      for (const tag of Object.keys(snapshot)) this.take(tags.get(tag), now, batch);
  }

  private releaseDue(now: number): void {
    if (this.heldCount === 0) return;
    const interval = this.settings.telemetry_interval;
    const batch: GatewayEvent[] = [];
    for (const tags of this.slots.values())
      for (const slot of tags.values())
        if (now - slot.outAt >= interval) this.take(slot, now, batch);
    if (batch.length > 0) this.options.out(batch);
  }

  /** At the overload's end: everything held goes out, and no tag counts as out any more. */
  private releaseAll(): void {
    const batch: GatewayEvent[] = [];
    for (const tags of this.slots.values())
      for (const slot of tags.values()) {
        if (slot.latest !== undefined) batch.push(released(slot));
        slot.latest = undefined;
        slot.outAt = Number.NEGATIVE_INFINITY;
      }
    this.heldCount = 0;
    if (batch.length > 0) this.options.out(batch);
  }
}

/**
 * Moves a newer telemetry event of a held tag into the one held, in place, when their data
 * have the same keys (they have, unless the quality or its reason came or went); false when
 * not, and the newer one is then held instead. Issue 12: at 10,000 registers a tag's events
 * come every 100 ms, and one held by reference outlived two of V8's young-generation
 * collections (every ~30 ms at that rate) and was copied to the old generation, 90 of every
 * 100 events while overloaded; the held event, old already, takes the numbers and shared
 * strings in place and the newer event dies young. Safe because a held event is the stage's
 * own until it goes out: the engine keeps no draft it emitted (engine.ts).
 */
function absorb(held: GatewayEvent, event: GatewayEvent): boolean {
  if (held.asset !== event.asset || held.topicClass !== event.topicClass) return false;
  const into = held.data;
  const from = event.data;
  let keys = 0;
  for (const key in into) {
    if (!(key in from)) return false;
    keys++;
  }
  for (const _ in from) keys--;
  if (keys !== 0) return false;
  for (const key in from) into[key] = from[key]!;
  held.time = event.time;
  if (event.context !== undefined) held.context = event.context;
  else if (held.context !== undefined) delete held.context;
  return true;
}

/**
 * The event that goes out for a held one: itself, or its latest value with the count. The
 * count comes first in `data`: telemetry's keys are sorted already and `conflated` sorts before
 * them all, so the renderer writes the object in one pass instead of sorting a copy (issue 12:
 * at 10,000 registers most events are released ones).
 */
function released(slot: TagSlot): GatewayEvent {
  const latest = slot.latest!;
  if (slot.count === 1) return latest;
  return {
    ...latest,
    data: { conflated: slot.count, ...latest.data, previous: slot.previous },
  };
}
