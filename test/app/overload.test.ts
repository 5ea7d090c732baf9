/**
 * The overload stage on its own (issue 12.2), with a clock and a backlog the test sets: nothing
 * is held until the backlog is over a limit; then each tag's telemetry goes out at most once per
 * interval, the rest folded into its latest value with the count (`data.conflated`, `previous`
 * the value published before the run); non-telemetry events are never held and never overtake
 * a held event of their tag; the overload ends under half the limits and everything held goes
 * out; `keep` holds nothing; every telemetry event in is accounted for by the events out. Also
 * the backlog's wait by the gateway's clock, recent counts, and the degraded reasons.
 */
import { describe, expect, it } from "vitest";
import { BacklogWatch, RecentCount } from "../../src/app/backlog.ts";
import { assessHealth, overloadReasons } from "../../src/app/health.ts";
import { type OverloadHealth, OverloadStage } from "../../src/app/overload.ts";
import { overloadSchema } from "../../src/config/schema/overload.ts";
import { EVENT_TYPES, type GatewayEvent, type JsonValue } from "../../src/events/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";

const settings = overloadSchema.parse({
  max_pending_events: 1000,
  max_pending_age: "10s",
  telemetry_interval: "1s",
  degraded_for: "5s",
});

/** One device's asset context, shared by its events as the engine shares it. */
const ASSET = {};

function telemetry(device: string, tag: string, value: number, previous: number, time: number) {
  return {
    type: EVENT_TYPES.telemetry,
    device,
    subject: tag,
    time,
    data: { value, previous, quality: "good", reason: "change" },
    topicClass: "telemetry",
    asset: ASSET,
  } satisfies GatewayEvent;
}

function other(type: string, device: string, subject: string, time: number, data = {}) {
  return { type, device, subject, time, data, topicClass: "event", asset: {} } as GatewayEvent;
}

function rig(policy: "conflate" | "keep" = "conflate") {
  const state = {
    now: 1_000_000,
    pending: 0,
    lastSequence: 0n,
    dropped: 0,
    queued: 0,
    connected: true,
  };
  const out: GatewayEvent[] = [];
  const stage = new OverloadStage({
    settings: { ...settings, policy },
    journal: () => ({
      pending: state.pending,
      lastSequence: state.lastSequence,
      dropped: state.dropped,
    }),
    connected: () => state.connected,
    queued: () => state.queued,
    queueDropped: () => 0,
    out: (events) => out.push(...events),
    now: () => state.now,
    log: silentLogger(),
  });
  return { state, out, stage };
}

/** A tag's telemetry stream v = 1, 2, 3, ... at 10 ms apart, each `previous` the one before. */
function stream(device: string, tag: string) {
  let v = 0;
  return (time: number) => {
    v += 1;
    return telemetry(device, tag, v, v - 1, time);
  };
}

const conflatedOf = (e: GatewayEvent) => (e.data.conflated as number | undefined) ?? 1;

describe("the overload stage", () => {
  it("passes everything through untouched while the backlog is under the limits", () => {
    const { state, out, stage } = rig();
    state.pending = 1000; // at the limit, not over it
    stage.assess();
    const next = stream("plc", "t");
    const events = Array.from({ length: 50 }, (_, i) => next(i));
    stage.push(events);
    expect(out).toEqual(events);
    expect(out.every((e, i) => e === events[i])).toBe(true);
    expect(stage.health()).toMatchObject({ overloaded: false, heldTags: 0, conflatedRecent: 0 });
  });

  it("over the limit: one telemetry per tag per interval, the rest folded with its count", () => {
    const { state, out, stage } = rig();
    state.pending = 1001;
    stage.assess();
    expect(stage.health().overloaded).toBe(true);
    const a = stream("plc", "a");
    const b = stream("plc", "b");
    const pushed: GatewayEvent[] = [];
    // 3 s of changes every 10 ms on two tags; the backlog looked at every 250 ms
    for (let i = 0; i < 300; i++) {
      state.now += 10;
      stage.assess();
      const batch = [a(state.now), b(state.now)];
      pushed.push(...batch);
      stage.push(batch);
    }
    stage.stop();
    for (const tag of ["a", "b"]) {
      const mine = out.filter((e) => e.subject === tag);
      // first at once, then one per second: 4 events stand for 300 changes
      expect(mine).toHaveLength(4);
      expect(mine.reduce((sum, e) => sum + conflatedOf(e), 0)).toBe(300);
      expect(mine.map((e) => e.data.value)).toEqual([1, 100, 200, 300]);
      // the chain is unbroken: each previous is the value published before it
      expect(mine.map((e) => e.data.previous)).toEqual([0, 1, 100, 200]);
      expect(mine.map((e) => e.data.conflated)).toEqual([undefined, 99, 100, 100]);
      // its own (latest) time
      expect(mine[1]!.time).toBe(pushed.filter((e) => e.subject === tag)[99]!.time);
    }
    expect(stage.stats().conflated.get("plc")).toBe(600 - 8);
  });

  it("keeps the engine's sorted data keys sorted when it adds the count", () => {
    // the engine writes telemetry's data keys sorted; the renderer copies nothing then, and a
    // released event is most of what goes out at 10,000 registers (issue 12)
    const { state, out, stage } = rig();
    state.pending = 5000;
    stage.assess();
    const sorted = (previous: number, value: number, time: number) => ({
      ...telemetry("plc", "t", value, previous, time),
      data: { previous, quality: "good", reason: "change", unit: "bar", value },
    });
    stage.push([sorted(0, 1, 1), sorted(1, 2, 2), sorted(2, 3, 3)]);
    stage.stop();
    const released = out.find((e) => e.data.conflated !== undefined);
    expect(released?.data).toEqual({
      conflated: 2,
      previous: 1,
      quality: "good",
      reason: "change",
      unit: "bar",
      value: 3,
    });
    const keys = Object.keys(released!.data);
    expect(keys).toEqual(keys.toSorted());
  });

  it("releases a run with its latest data, time and context whatever came and went in it", () => {
    // a held tag takes its newer events in place while their data have the same keys, and
    // holds the newer event itself when they differ (an uncertain reading adds
    // quality_reason): either way what goes out is the latest event's, with the count
    const { state, out, stage } = rig();
    state.pending = 5000;
    stage.assess();
    const event = (value: number, time: number, quality: string, context: number) => ({
      ...telemetry("plc", "t", value, value - 1, time),
      data: {
        previous: value - 1,
        quality,
        ...(quality === "good" ? {} : { quality_reason: `q${value}` }),
        reason: "change",
        value: value + 0.5,
      },
      context: { batch: `b${context}` },
    });
    const runs = [
      [event(1, 10, "good", 1)], // out at once
      [event(2, 20, "good", 1), event(3, 30, "good", 2)], // held, then taken in place
      [event(4, 40, "uncertain", 2), event(5, 50, "uncertain", 3)], // keys differ, then in place
      [event(6, 60, "good", 4)], // keys differ again
    ];
    for (const run of runs) stage.push(run);
    const held = out.length;
    state.now += 1000;
    stage.assess();
    expect(held).toBe(1);
    expect(out).toHaveLength(2);
    expect(out[1]).toEqual({
      ...telemetry("plc", "t", 0, 0, 60),
      data: { conflated: 5, previous: 1, quality: "good", reason: "change", value: 6.5 },
      context: { batch: "b4" },
    });
    state.now += 10;
    stage.push([event(7, 70, "good", 4), event(8, 80, "uncertain", 5)]);
    stage.push([{ ...event(9, 90, "uncertain", 5), context: undefined }]);
    stage.stop();
    const last = out[2]!;
    expect(last.data).toEqual({
      conflated: 3,
      previous: 6,
      quality: "uncertain",
      quality_reason: "q9",
      reason: "change",
      value: 9.5,
    });
    expect([last.time, last.context]).toEqual([90, undefined]);
    expect(stage.stats().conflated.get("plc")).toBe(9 - 3);
  });

  it("never holds other events, and lets a held telemetry out before them (per tag order)", () => {
    const { state, out, stage } = rig();
    state.pending = 5000;
    stage.assess();
    const t = stream("plc", "t");
    const u = stream("plc", "u");
    const w = stream("other", "w");
    stage.push([t(1), u(1), w(1)]); // first of each: out at once
    stage.push([t(2), t(3), u(2), w(2)]); // held
    const quality = other(EVENT_TYPES.qualityChanged, "plc", "t", 4, { quality: "bad" });
    stage.push([quality]);
    expect(out.map((e) => [e.subject, e.data.value ?? e.type])).toEqual([
      ["t", 1],
      ["u", 1],
      ["w", 1],
      ["t", 3], // released right before its tag's quality event
      ["t", EVENT_TYPES.qualityChanged],
    ]);
    expect(out[3]!.data).toMatchObject({ value: 3, previous: 1, conflated: 2 });
    // a trigger whose snapshot names u; state, alarm and trigger events of other tags
    out.length = 0;
    const trigger = other("cycle.done", "plc", "done", 5, { snapshot: { u: 2 } });
    const state2 = other(EVENT_TYPES.stateChanged, "plc", "mode", 5, { state: "run" });
    const alarm = other(EVENT_TYPES.alarmChanged, "plc", "overheat", 5, { active: true });
    stage.push([state2, alarm, trigger]);
    expect(out.map((e) => e.subject)).toEqual(["mode", "overheat", "u", "done"]);
    // a device status lets every held tag of its device go first, and only those
    out.length = 0;
    stage.push([t(6), u(6), w(6)]); // t was just released: held; u released: held; w held
    const status = other(EVENT_TYPES.deviceStatus, "plc", "plc", 7, { status: "disconnected" });
    stage.push([status]);
    expect(out.map((e) => e.subject)).toEqual(["t", "u", "plc"]);
    expect(stage.health().heldTags).toBe(1); // w of the other device
  });

  it("ends the overload only under half the limits, and lets everything held out", () => {
    const { state, out, stage } = rig();
    state.pending = 1001;
    stage.assess();
    const t = stream("plc", "t");
    stage.push([t(1), t(2), t(3)]);
    expect(out).toHaveLength(1);
    state.pending = 600; // under the limit, over half of it: still overloaded
    stage.assess();
    expect(stage.health()).toMatchObject({ overloaded: true, heldTags: 1 });
    state.pending = 500;
    stage.assess();
    expect(stage.health()).toMatchObject({ overloaded: false, heldTags: 0 });
    expect(out.map((e) => e.data.value)).toEqual([1, 3]);
    stage.push([t(4)]);
    expect(out.map((e) => e.data.value)).toEqual([1, 3, 4]);
    // conflation shows in health for degraded_for (5 s), then no longer
    expect(stage.health().conflatedRecent).toBe(1);
    state.now += 5001;
    stage.assess();
    expect(stage.health().conflatedRecent).toBe(0);
  });

  it("measures the wait of the oldest pending event by the gateway's clock", () => {
    const { state, stage } = rig();
    // 10 events a second appended, none acknowledged, the broker stuck for 3 minutes
    for (let i = 1; i <= 181; i++) {
      state.lastSequence = BigInt(i * 10);
      state.pending = i * 10;
      stage.assess();
      expect(stage.health().overloaded).toBe(i * 1000 - 1000 > 10_000);
      state.now += 1000;
    }
    expect(stage.health().backlog.waitedMs).toBe(180_000);
    // a second later, the events of the first 100 s acknowledged: the oldest left, appended
    // in second 101, waited 81 s
    state.pending -= 1000;
    stage.assess();
    expect(stage.health().backlog.waitedMs).toBe(81_000);
  });

  it("does not conflate while the broker is away (an outage), but while its backlog drains", () => {
    const { state, out, stage } = rig();
    state.connected = false;
    state.pending = 50_000;
    stage.assess();
    const t = stream("plc", "t");
    stage.push([t(1), t(2), t(3)]);
    expect(out.map((e) => e.data.value)).toEqual([1, 2, 3]);
    expect(stage.health().overloaded).toBe(false);
    // events waiting to be journaled count, broker or not
    state.queued = 1001;
    stage.assess();
    expect(stage.health().overloaded).toBe(true);
    state.queued = 0;
    stage.assess();
    expect(stage.health().overloaded).toBe(false);
    // back: the outage's backlog drains, live telemetry is conflated meanwhile
    state.connected = true;
    stage.assess();
    stage.push([t(4), t(5), t(6)]);
    expect(out.map((e) => e.data.value)).toEqual([1, 2, 3, 4]);
    state.pending = 400;
    stage.assess();
    expect(out.map((e) => e.data.value)).toEqual([1, 2, 3, 4, 6]);
  });

  it("with policy keep, holds nothing however large the backlog", () => {
    const { state, out, stage } = rig("keep");
    state.pending = 1_000_000;
    stage.assess();
    const t = stream("plc", "t");
    const events = Array.from({ length: 100 }, (_, i) => t(i));
    stage.push(events);
    expect(out).toEqual(events);
    expect(stage.health()).toMatchObject({ overloaded: false, policy: "keep" });
    // the backlog is still reported
    expect(overloadReasons(stage.health(), true)[0]).toMatch(
      /^the broker takes events slower than they come: 1000000 events wait/,
    );
  });

  it("stop() lets every held event out", () => {
    const { state, out, stage } = rig();
    state.pending = 2000;
    stage.start();
    const t = stream("plc", "t");
    stage.push([t(1), t(2), t(3), t(4)]);
    stage.stop();
    expect(out.map((e) => [e.data.value, e.data.conflated as JsonValue])).toEqual([
      [1, undefined],
      [4, 3],
    ]);
  });
});

describe("the backlog and recent counts", () => {
  it("waits from the first look for a backlog found at start", () => {
    const watch = new BacklogWatch(100);
    expect(watch.look(0, 5, { pending: 100, lastSequence: 1000n })).toEqual({
      events: 105,
      waitedMs: 0,
    });
    expect(watch.look(30_000, 0, { pending: 100, lastSequence: 1000n }).waitedMs).toBe(30_000);
    // a fresh event only: its wait is short
    expect(watch.look(31_000, 0, { pending: 1, lastSequence: 1001n }).waitedMs).toBe(0);
    // without a broker the journal's pending is no backlog
    expect(watch.look(32_000, 7)).toEqual({ events: 7 });
  });

  it("keeps its marks bounded through a long backlog, never overstating a wait", () => {
    const watch = new BacklogWatch(100);
    // one event every 100 ms for 2000 s, none acknowledged
    for (let t = 0; t <= 2_000_000; t += 100)
      watch.look(t, 0, { pending: t / 100 + 1, lastSequence: BigInt(t / 100 + 1) });
    expect((watch as unknown as { marks: unknown[] }).marks.length).toBeLessThanOrEqual(256);
    // acknowledged up to second 1500: the oldest left was appended at 1500.1 s
    const waited = watch.look(2_000_000, 0, { pending: 4999, lastSequence: 20_001n }).waitedMs!;
    expect(waited).toBeLessThanOrEqual(499_900);
    expect(waited).toBeGreaterThan(499_900 - 2_000_000 / 64);
  });

  it("counts what a total grew within the window only", () => {
    const recent = new RecentCount(1000);
    expect(recent.look(0, 175_000)).toBe(0); // dropped before: not recent
    expect(recent.look(500, 175_010)).toBe(10);
    expect(recent.look(1400, 175_010)).toBe(10);
    expect(recent.look(1501, 175_010)).toBe(0);
    expect(recent.look(1600, 175_011)).toBe(1);
  });
});

describe("overload in the health verdict", () => {
  const now = 1_000_000;
  const overload = (over: Partial<OverloadHealth>): OverloadHealth => ({
    policy: "conflate",
    settings,
    broker: true,
    overloaded: false,
    backlog: { events: 10 },
    heldTags: 0,
    conflatedRecent: 0,
    droppedRecent: { journal: 0, queue: 0 },
    ...over,
  });
  const summary = (o: OverloadHealth, connected = true) =>
    assessHealth({
      now,
      gateway: { id: "gw", version: "1", startedAt: now - 1000 },
      journal: {
        lastSequence: 10n,
        pending: o.backlog.events,
        bytes: 1,
        dropped: 0,
        corruptSkipped: 0,
        lastCommitMs: 1,
      },
      queuedEvents: 0,
      publisher: { inFlight: 0, published: 1, resent: 0, reconnects: 0, connected },
      devices: [],
      limits: {
        max_pending_events: 10_000_000,
        max_pending_age: 3_600_000,
        stale_polls: 5,
        devices: "all_down",
        topic_interval: 30_000,
      },
      overload: o,
    });

  it("is ok under the limits, with nothing conflated or dropped", () => {
    expect(summary(overload({}))).toMatchObject({ status: "ok", degraded: [] });
  });

  it("is degraded, with each reason, by a backlog, conflation and drops", () => {
    const o = overload({
      overloaded: true,
      backlog: { events: 1_577_115, waitedMs: 166_000 },
      heldTags: 12,
      conflatedRecent: 3400,
      droppedRecent: { journal: 175_000, queue: 3 },
    });
    const got = summary(o);
    expect(got.status).toBe("degraded");
    expect(got.reasons).toEqual([]);
    expect(got.degraded).toEqual([
      "the broker takes events slower than they come: 1577115 events wait, the oldest waiting for the broker for 166 s (overload limits 1000 events, 10 s)",
      "telemetry is conflated now: at most one event per tag every 1 s, 12 tags held, 3400 changes folded into later events in the last 5 s",
      "the journal's size policy dropped 175000 events in the last 5 s",
      "3 events were dropped before the journal in the last 5 s (queue full or refused; see the log)",
    ]);
    expect(got.overload).toEqual({
      policy: "conflate",
      conflating: true,
      backlog_events: 1_577_115,
      oldest_waited_s: 166,
      held_tags: 12,
      conflated_recent: 3400,
      dropped_recent: { journal: 175_000, queue: 3 },
    });
    expect(summary(overload({ backlog: { events: 2000 } }), false).degraded).toEqual([
      "the broker is unreachable: 2000 events wait (overload limits 1000 events, 10 s)",
    ]);
  });
});
