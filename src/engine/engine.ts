/**
 * The engine: samples and the time in, events out. Pure: no I/O, no timers, no clock of its
 * own; `now` is the gateway's time (ms since the epoch), given by the caller.
 *
 * Contract:
 * - apply(samples, now): each sample of a known device and tag goes through its tag's rules
 *   in the order given (the engine trusts arrival order); samples of unknown devices or tags
 *   are ignored and counted in stats(). A good or uncertain sample holding NaN or +-Infinity
 *   becomes quality bad with value null and reason "not a number" or "infinite" (JSON cannot
 *   carry them), so it shows up as quality.changed and never as a value.
 * - Per sample, events come in this order: quality.changed (quality.ts); then, for good
 *   samples, state.changed (states.ts), alarm.changed (alarms.ts), the trigger event
 *   (triggers.ts); a tag with none of states/alarms/trigger is telemetry (telemetry.ts), for
 *   good and uncertain samples.
 * - An uncertain sample is a value too (issue 11.9): a telemetry tag publishes it with quality
 *   uncertain and its reason (quality_reason). It does not move states, alarms or triggers,
 *   which claim facts and carry no quality, nor the tag's last good value (context, snapshots
 *   and last_good_value): those wait for a good value.
 * - One apply call is one poll: context reads the values of the same call first (the last
 *   sample of a tag in the call), then the latest known ones. A tag's value there is its good
 *   value, or null while its quality is not good or it was never read.
 * - Snapshots are read at the trigger (issue 8.3): snapshotReads(samples) says, without
 *   changing any state, which triggers these samples would fire if applied now (the same order
 *   and rules as apply) and which tags of the device their snapshots and the device's context
 *   need. The caller reads those tags from the device after seeing the samples and hands the
 *   results to apply in the same call, marked `snapshotRead`. Such samples feed only the
 *   snapshot (and the context of the events of the sample that fired): a value read after the
 *   trigger arrived is never older than the trigger. A tag whose read was not good is null in
 *   the snapshot (and context), its reason in `snapshot_errors`; never an older known value.
 *   They never go through quality, state or telemetry rules nor change what the tag's own
 *   samples see. A device without snapshot reads in the call (the engine used on its own)
 *   gets the values of the same call, then the latest known ones, as context does.
 * - tick(now) emits what time alone causes: stale (quality.ts), then held min_interval
 *   changes and heartbeats (telemetry.ts). nextDue() is the earliest time tick could emit
 *   something; undefined when nothing is scheduled. flush(now) releases held changes at
 *   shutdown. Staleness of a tag never read counts from the first time the engine learns
 *   the time, so the app should tick(now) once at start.
 * - Every event carries the device id, its asset (site from the device, else the gateway's)
 *   and, when the device has context tags, `context` {tag: value}. time is the sample's
 *   sourceTime, else its readTime; for tick events, now (a released held change keeps the
 *   time of its sample). Except quality.changed (issue 11.10): it is dated when the gateway
 *   observed the change (the sample's readTime; stale: now), never before the tag's previous
 *   quality change, with the sample's sourceTime in data.source_time (quality.ts).
 */
import { isDeepStrictEqual } from "node:util";
import type { TagSample, TagValue } from "../events/sample.ts";
import { EVENT_TYPES, type GatewayEvent, type JsonValue } from "../events/types.ts";
import { alarmChanges, alarmWord } from "./alarms.ts";
import { markStale, type QualityTrack, qualityOnSample, staleDue } from "./quality.ts";
import { type StateTrack, stateOnGood } from "./states.ts";
import {
  type TelemetryTrack,
  telemetryDue,
  telemetryFlush,
  telemetryOnValue,
  telemetryTick,
} from "./telemetry.ts";
import { type Fresh, triggerData, triggerFires } from "./triggers.ts";
import type { Draft, EngineDevice, EngineTag } from "./types.ts";
import { nonFiniteReason } from "./values.ts";

export type { EngineDevice, EngineTag } from "./types.ts";

export interface EngineStats {
  /** Samples of devices or tags the engine does not know. */
  ignoredSamples: number;
}

/** Tags of one device to read at once, for the snapshots of triggers about to fire. */
export interface SnapshotRead {
  device: string;
  tags: string[];
}

export interface Engine {
  apply(samples: readonly TagSample[], now: number): GatewayEvent[];
  /**
   * Pure query: the snapshot and context tags, per device, of the triggers these samples would
   * fire if they were applied now; empty when none would fire. Changes nothing.
   */
  snapshotReads(samples: readonly TagSample[]): SnapshotRead[];
  /** Heartbeats, staleness, min_interval releases. */
  tick(now: number): GatewayEvent[];
  /** The earliest time tick() could emit something (so the app can sleep until then). */
  nextDue(): number | undefined;
  /** At shutdown: releases changes held back by min_interval now, so none is lost. */
  flush(now: number): GatewayEvent[];
  /**
   * Live reload: a device given here starts afresh (added or changed: its tags are seen anew,
   * with initial events, its staleness counted from `now`); devices not in `keep` nor given
   * are forgotten; the devices in `keep` keep all their state.
   */
  setDevices(devices: readonly EngineDevice[], keep: ReadonlySet<string>, now: number): void;
  /**
   * Live reload of one device's tag map on its live connection (issue 13.3): the device's
   * definition (asset, context, rules) becomes `device`. Its tags no longer there are
   * forgotten; new tags, the tags named in `restart` and those whose rules differ start
   * afresh (initial events, staleness counted from `now`); every other tag keeps all its
   * state (last values, state and since when, alarms, held changes, heartbeat, quality). An
   * unknown device is added as setDevices adds one.
   */
  retagDevice(device: EngineDevice, restart: ReadonlySet<string>, now: number): void;
  stats(): EngineStats;
}

interface TagRuntime {
  tag: EngineTag;
  staleAfterMs: number | undefined;
  quality: QualityTrack;
  telemetry: TelemetryTrack;
  state?: StateTrack;
  telemetryRule: boolean;
  /** For a tag added by a reload: when its staleness clock started (else its device's). */
  clockStart?: number;
}

interface DeviceRuntime {
  device: EngineDevice;
  /**
   * The device's asset, one frozen copy for all its events: the renderer and the topic cache
   * (app/render.ts) key on it by reference, so a copy per event would defeat both (issue 12).
   */
  asset: GatewayEvent["asset"];
  /**
   * The tags whose value of the current call is ever looked up (currentValue): the device's
   * context and its triggers' snapshots. Only these go into the call's Poll map.
   */
  lookedUp: ReadonlySet<string>;
  /** Whether any tag of the device has a trigger (snapshotReads passes over the others). */
  triggers: boolean;
  tags: Map<string, TagRuntime>;
  /** Tags with a time rule (heartbeat, min_interval, stale_after): what tick() visits. */
  timed: TagRuntime[];
  /** For a device added by a reload: when its staleness clock started (else the engine's). */
  clockStart?: number;
}

/** Values of one apply call, per device: the last sample of each tag (null when not good). */
type Poll = Map<string, TagValue>;

/** What one apply call keeps of a device: its looked-up values and its reads at a trigger. */
interface DeviceCall {
  rt: DeviceRuntime;
  poll: Poll;
  fresh?: Fresh;
}

/**
 * `make(device)` once per device for the length of one call, and looked up once per run of
 * that device's samples (samples come by device; issue 12: 100,000 samples/s at 10,000
 * registers, where a lookup per sample was a tenth of the engine).
 */
function byDevice<T>(make: (device: string) => T | undefined): (device: string) => T | undefined {
  const made = new Map<string, T | undefined>();
  let last: string | undefined;
  let value: T | undefined;
  return (device) => {
    if (device === last) return value;
    last = device;
    if (made.has(device)) value = made.get(device);
    else {
      value = make(device);
      made.set(device, value);
    }
    return value;
  };
}

export function createEngine(devices: readonly EngineDevice[]): Engine {
  const runtimes = new Map<string, DeviceRuntime>();
  for (const device of devices) runtimes.set(device.id, deviceRuntime(device));
  let clockStart: number | undefined;
  let ignoredSamples = 0;

  function currentValue(rt: DeviceRuntime, poll: Poll | undefined, name: string): JsonValue {
    if (poll?.has(name)) return poll.get(name)!;
    const tag = rt.tags.get(name);
    if (tag?.quality.quality !== "good") return null;
    return tag.quality.lastGood?.value ?? null;
  }

  function contextOf(
    rt: DeviceRuntime,
    poll: Poll | undefined,
    fresh: Fresh | undefined,
  ): GatewayEvent["context"] {
    if (rt.device.context.length === 0) return undefined;
    const context: { [tag: string]: JsonValue } = {};
    for (const name of rt.device.context) {
      // with reads at a trigger, a context tag not read is null rather than an older value
      context[name] = fresh ? (fresh.get(name)?.value ?? null) : currentValue(rt, poll, name);
    }
    return context;
  }

  /**
   * Makes the drafts from `start` on in `out` events of the device, in place (issue 12: a copy of
   * each draft, an array per sample and per call were a quarter of the gateway's garbage at
   * 10,000 registers): the draft objects are the rule modules' own and not kept by them.
   */
  function finish(
    rt: DeviceRuntime,
    out: (Draft | GatewayEvent)[],
    start: number,
    poll: Poll | undefined,
    fresh?: Fresh,
  ): void {
    if (out.length === start) return;
    const context = contextOf(rt, poll, fresh);
    for (let i = start; i < out.length; i++) {
      const event = out[i] as Draft & Partial<GatewayEvent>;
      event.device = rt.device.id;
      event.asset = rt.asset;
      if (context !== undefined) event.context = context;
    }
  }

  /**
   * A sample's drafts, pushed to `out`; whether it fired a trigger (its events then take
   * `fresh` context). Allocates nothing for a sample that changes nothing.
   */
  function onSample(
    rt: DeviceRuntime,
    tag: TagRuntime,
    sample: TagSample,
    poll: Poll,
    fresh: Fresh | undefined,
    now: number,
    out: (Draft | GatewayEvent)[],
  ): boolean {
    let fired = false;
    const time = sample.sourceTime ?? sample.readTime;
    const normalized = normalize(sample);
    const { quality, value } = normalized;
    const changed = qualityOnSample(tag.quality, normalized, now);
    if (changed !== undefined) {
      const subject = tag.tag.name;
      const { data, time: observed } = changed;
      out.push({ type: EVT_QUALITY, subject, time: observed, data, topicClass: "quality" });
    }
    if (quality === "uncertain" && tag.telemetryRule) {
      const reason = normalized.reason ?? null;
      const draft = telemetryOnValue(tag.tag, tag.telemetry, value, quality, reason, time, now);
      if (draft !== undefined) out.push(draft);
    }
    if (quality !== "good") return fired;
    // the last good value is moved in place: `previous` is its value before this sample
    const lastGood = tag.quality.lastGood;
    const hadPrevious = lastGood !== undefined;
    const previous = lastGood?.value;
    if (lastGood === undefined) tag.quality.lastGood = { value };
    else lastGood.value = value;
    const rules = tag.tag;
    if (rules.states !== undefined) {
      const next = stateOnGood(rules.name, rules.states, tag.state, value, sample);
      tag.state = next.track;
      if (next.draft !== undefined) out.push(next.draft);
    }
    if (rules.alarms !== undefined) {
      const word = alarmWord(value);
      const before = hadPrevious ? alarmWord(previous as TagValue) : undefined;
      if (word !== undefined) out.push(...alarmChanges(rules.alarms, before, word, value, time));
    }
    const trigger = rules.trigger;
    if (trigger !== undefined) {
      const last = hadPrevious ? { value: previous as TagValue } : undefined;
      if (triggerFires(trigger, last, value)) {
        fired = true;
        const known = (name: string) => currentValue(rt, poll, name);
        out.push({
          type: trigger.event,
          subject: rules.name,
          time,
          data: triggerData(rules.name, value, trigger.snapshot, fresh, known),
          topicClass: "event",
        });
      }
    }
    if (tag.telemetryRule) {
      const draft = telemetryOnValue(rules, tag.telemetry, value, quality, null, time, now);
      if (draft !== undefined) out.push(draft);
    }
    return fired;
  }

  return {
    apply(samples, now) {
      clockStart ??= now;
      const calls = byDevice<DeviceCall>((name) => {
        const rt = runtimes.get(name);
        return rt === undefined ? undefined : { rt, poll: new Map<string, TagValue>() };
      });
      // first the values this call looks up (context, snapshots) and the reads at a trigger
      for (const sample of samples) {
        const call = calls(sample.device);
        if (call === undefined) continue;
        if (sample.snapshotRead === true) {
          if (!call.rt.tags.has(sample.tag)) continue;
          call.fresh ??= new Map();
          call.fresh.set(sample.tag, freshValue(sample));
          continue;
        }
        // a value nobody looks up is not kept (issue 12: 100,000 samples/s at 10,000 registers)
        if (call.rt.lookedUp.size === 0 || !call.rt.lookedUp.has(sample.tag)) continue;
        if (!call.rt.tags.has(sample.tag)) continue;
        const { quality, value } = normalize(sample);
        call.poll.set(sample.tag, quality === "good" ? value : null);
      }
      const out: (Draft | GatewayEvent)[] = [];
      for (const sample of samples) {
        const call = calls(sample.device);
        const tag = call?.rt.tags.get(sample.tag);
        if (call === undefined || tag === undefined) {
          ignoredSamples++;
          continue;
        }
        if (sample.snapshotRead === true) continue;
        const { rt, poll, fresh } = call;
        const start = out.length;
        const fired = onSample(rt, tag, sample, poll, fresh, now, out);
        finish(rt, out, start, poll, fired ? fresh : undefined);
      }
      return out as GatewayEvent[];
    },

    snapshotReads(samples) {
      const wanted = new Map<string, Set<string>>();
      // the good value each tag would have as `previous`, as apply would move it along
      const last = new Map<TagRuntime, { value: TagValue }>();
      const runtimeOf = byDevice((name) => runtimes.get(name));
      for (const sample of samples) {
        if (sample.snapshotRead === true) continue;
        const rt = runtimeOf(sample.device);
        // only a trigger's own samples can fire it (`last` serves them alone): the others are
        // passed over before any work, a device without triggers at once (issue 12: at 10,000
        // registers this query was a third of the engine)
        if (rt === undefined || !rt.triggers) continue;
        const tag = rt.tags.get(sample.tag);
        const rule = tag?.tag.trigger;
        if (tag === undefined || rule === undefined) continue;
        const { quality, value } = normalize(sample);
        if (quality !== "good") continue;
        const previous = last.has(tag) ? last.get(tag) : tag.quality.lastGood;
        last.set(tag, { value });
        if (!triggerFires(rule, previous, value)) continue;
        const tags = wanted.get(rt.device.id) ?? new Set<string>();
        wanted.set(rt.device.id, tags);
        for (const name of [...rule.snapshot, ...rt.device.context]) tags.add(name);
      }
      return [...wanted]
        .filter(([, tags]) => tags.size > 0)
        .map(([device, tags]) => ({ device, tags: [...tags] }));
    },

    tick(now) {
      clockStart ??= now;
      const out: (Draft | GatewayEvent)[] = [];
      for (const rt of runtimes.values()) {
        const first = out.length;
        for (const tag of rt.timed) {
          const start = tag.clockStart ?? rt.clockStart ?? clockStart;
          const stale = staleDue(tag.quality, tag.staleAfterMs, start);
          if (stale !== undefined && now >= stale) {
            const { data, time } = markStale(tag.quality, tag.staleAfterMs!, now);
            const subject = tag.tag.name;
            out.push({ type: EVT_QUALITY, subject, time, data, topicClass: "quality" });
          }
          if (!tag.telemetryRule) continue;
          const quality = tag.quality.quality ?? "good";
          const current = { quality, reason: tag.quality.reason ?? null };
          const draft = telemetryTick(tag.tag, tag.telemetry, now, current);
          if (draft !== undefined) out.push(draft);
        }
        finish(rt, out, first, undefined);
      }
      return out as GatewayEvent[];
    },

    nextDue() {
      let due: number | undefined;
      for (const rt of runtimes.values()) {
        for (const tag of rt.timed) {
          for (const at of [
            staleDue(tag.quality, tag.staleAfterMs, tag.clockStart ?? rt.clockStart ?? clockStart),
            tag.telemetryRule ? telemetryDue(tag.tag, tag.telemetry) : undefined,
          ]) {
            if (at !== undefined && (due === undefined || at < due)) due = at;
          }
        }
      }
      return due;
    },

    flush(now) {
      const out: (Draft | GatewayEvent)[] = [];
      for (const rt of runtimes.values()) {
        const first = out.length;
        for (const tag of rt.timed) {
          const draft = tag.telemetryRule ? telemetryFlush(tag.tag, tag.telemetry, now) : undefined;
          if (draft !== undefined) out.push(draft);
        }
        finish(rt, out, first, undefined);
      }
      return out as GatewayEvent[];
    },

    setDevices(devices, keep, now) {
      for (const id of [...runtimes.keys()]) if (!keep.has(id)) runtimes.delete(id);
      for (const device of devices) {
        const rt = deviceRuntime(device);
        rt.clockStart = now; // a device added now cannot have been silent since the start
        runtimes.set(device.id, rt);
      }
    },

    retagDevice(device, restart, now) {
      const old = runtimes.get(device.id);
      const rt = deviceRuntime(device);
      if (old === undefined) rt.clockStart = now;
      else {
        if (old.clockStart !== undefined) rt.clockStart = old.clockStart;
        for (const [name, tag] of rt.tags) {
          const before = old.tags.get(name);
          if (before === undefined || restart.has(name) || !sameRules(before.tag, tag.tag)) {
            tag.clockStart = now; // a tag added now cannot have been silent since the start
            continue;
          }
          Object.assign(tag, { ...before, tag: tag.tag, staleAfterMs: tag.staleAfterMs });
        }
      }
      runtimes.set(device.id, rt);
    },

    stats() {
      return { ignoredSamples };
    },
  };
}

const EVT_QUALITY = EVENT_TYPES.qualityChanged;

function deviceRuntime(device: EngineDevice): DeviceRuntime {
  const tags = new Map<string, TagRuntime>();
  const timed: TagRuntime[] = [];
  for (const tag of device.tags) {
    const telemetryRule =
      tag.states === undefined && tag.alarms === undefined && tag.trigger === undefined;
    const rt: TagRuntime = {
      tag,
      staleAfterMs: tag.staleAfterMs ?? device.staleAfterMs,
      quality: {},
      telemetry: {},
      telemetryRule,
    };
    tags.set(tag.name, rt);
    const timedRule =
      rt.staleAfterMs !== undefined ||
      (telemetryRule && (tag.heartbeatMs !== undefined || tag.minIntervalMs !== undefined));
    if (timedRule) timed.push(rt);
  }
  const lookedUp = new Set(device.context);
  for (const tag of device.tags) for (const name of tag.trigger?.snapshot ?? []) lookedUp.add(name);
  const triggers = device.tags.some((tag) => tag.trigger !== undefined);
  const asset = Object.freeze({ ...device.asset });
  return { device, tags, timed, asset, lookedUp, triggers };
}

/** Whether two definitions of a tag apply the same rules (built by the same mapping). */
function sameRules(a: EngineTag, b: EngineTag): boolean {
  return isDeepStrictEqual(a, b);
}

/** A snapshot read's value: the good value, else null with why it is not good. */
function freshValue(sample: TagSample): { value: TagValue; reason?: string } {
  const { quality, value, reason } = normalize(sample);
  if (quality === "good") return { value };
  return { value: null, reason: reason ?? `quality ${quality}` };
}

/**
 * NaN and infinities cannot travel in JSON: such a sample is bad, with the reason why (and no
 * reason code: the source did not say it).
 */
function normalize(sample: TagSample): TagSample {
  const reason = sample.quality === "bad" ? undefined : nonFiniteReason(sample.value);
  if (reason === undefined) return sample;
  const { reasonCode: _dropped, ...rest } = sample;
  return { ...rest, quality: "bad", value: null, reason };
}
