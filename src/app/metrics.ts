/**
 * The gateway's Prometheus metrics, on a Registry of its own (never prom-client's global one, so
 * two gateways in one process, as in tests, never mix). Names are snake_case with the prefix
 * plc2mqtt_; the default Node process metrics sit beside them under their usual names.
 *
 * Two kinds of series:
 * - counted as things happen: polls, tag reads by quality, read errors by reason class, read
 *   duration, events by device, tag and type (labels come from the config, so they are bounded);
 * - read on scrape from the parts' stats(): journal, publisher, engine, device liveness. Totals
 *   the parts already count (published, dropped...) are mirrored as counters.
 *
 * Read errors are counted per tag read that came back bad, by its reason code (TagSample.
 * reasonCode): a code of the error catalogue (MODBUS_TIMEOUT, ...) or an OPC UA status name
 * (BadNodeIdUnknown). A read() that threw counts once, by its error's code. The label set stays
 * bounded (codeLabel): a code that is neither of those shapes, a missing one, and any new code
 * past MAX_CODE_LABELS distinct ones are counted as `other`.
 *
 * Driver retries (DriverStats.retries: transient failures retried within a poll) are read from
 * each device's driver at scrape time, through the device watch (device-watch.ts), and kept
 * monotonic per device across a driver replaced by a reload.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { EngineStats } from "../engine/index.ts";
import type { GatewayEvent } from "../events/types.ts";
import type { JournalStats } from "../journal/index.ts";
import { ErrorCodes } from "../lib/errors.ts";
import { type PublisherStats, SET_ASIDE_CLASSES } from "../publish/index.ts";
import type { DeviceState } from "./device-watch.ts";
import type { PollReport } from "./driver-runner.ts";
import type { OverloadStats } from "./overload.ts";

/** Distinct reason codes counted under their own label; later new ones count as `other`. */
export const MAX_CODE_LABELS = 64;

/** An OPC UA status code name as node-opcua gives it (BadNodeIdUnknown, UncertainLastUsable...). */
const OPCUA_STATUS_NAME = /^(Bad|Uncertain|Good)[A-Za-z0-9]{1,80}$/;

/**
 * The `code` label of a read error: the reason code when it is a catalogue code or an OPC UA
 * status name and the label set has room (`seen` holds the codes labelled so far), else `other`.
 */
export function codeLabel(code: string | undefined, seen: Set<string>): string {
  if (code === undefined) return "other";
  if (seen.has(code)) return code;
  if (!(Object.hasOwn(ErrorCodes, code) || OPCUA_STATUS_NAME.test(code))) return "other";
  if (seen.size >= MAX_CODE_LABELS) return "other";
  seen.add(code);
  return code;
}

export interface MetricsSources {
  journal: () => JournalStats;
  /** Undefined when no broker is configured. */
  publisher: () => PublisherStats | undefined;
  /** Events waiting to be appended to the journal. */
  queuedEvents: () => number;
  engine: () => EngineStats;
  devices: () => readonly DeviceState[];
  healthy: () => boolean;
  now: () => number;
  /** The overload stage (overload.ts); its series are left out without it. */
  overload?: () => OverloadStats;
}

/** A counter whose value another part keeps: set from `value()` on every scrape. */
function mirroredCounter(
  registry: Registry,
  name: string,
  help: string,
  value: () => number | undefined,
): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const v = value();
      this.reset();
      if (v !== undefined) this.inc(v);
    },
  });
}

function gauge(registry: Registry, name: string, help: string, value: () => number | undefined) {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const v = value();
      this.reset();
      if (v !== undefined) this.set(v);
    },
  });
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly polls: Counter<"device">;
  private readonly tagReads: Counter<"device" | "quality">;
  private readonly readErrors: Counter<"device" | "code">;
  private readonly pollsSkipped: Counter<"device">;
  /** Reason codes that have a label of their own (bounded: codeLabel). */
  private readonly codes = new Set<string>();
  private readonly readDuration: Histogram<"device">;
  /** Events produced: device, then type, then tag (the subject). */
  private readonly eventCounts = new Map<string, Map<string, Map<string, { n: number }>>>();

  /** Journal stats read once per scrape (each one stats files and queries the store). */
  private journalStats: JournalStats | undefined;

  constructor(given: MetricsSources, options: { processMetrics?: boolean } = {}) {
    const sources: MetricsSources = {
      ...given,
      journal: () => {
        this.journalStats ??= given.journal();
        return this.journalStats;
      },
    };
    const registers = [this.registry];
    this.polls = new Counter({
      name: "plc2mqtt_device_polls_total",
      help: "Polls of a poll group that ended, by device",
      labelNames: ["device"],
      registers,
    });
    this.pollsSkipped = new Counter({
      name: "plc2mqtt_device_polls_skipped_total",
      help: "Polls of a poll group passed over, not read, by device: a poll outlasted its interval, or the gateway took a device's polls late (a device on its own I/O thread)",
      labelNames: ["device"],
      registers,
    });
    this.tagReads = new Counter({
      name: "plc2mqtt_device_tag_reads_total",
      help: "Tag values read, by device and quality",
      labelNames: ["device", "quality"],
      registers,
    });
    this.readErrors = new Counter({
      name: "plc2mqtt_device_read_errors_total",
      help: "Tag reads that came back bad, by device and reason code (a catalogue code such as MODBUS_TIMEOUT, or an OPC UA status name such as BadNodeIdUnknown; other: no code, or past the bounded label set)",
      labelNames: ["device", "code"],
      registers,
    });
    this.readDuration = new Histogram({
      name: "plc2mqtt_device_read_duration_seconds",
      help: "Duration of one poll group's read, by device",
      labelNames: ["device"],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    // counted in plain maps per event and handed to prom-client at a scrape: its inc() with
    // labels builds a key string per call, a tenth of the allocations at 10k events/s (issue 12)
    const counts = this.eventCounts;
    new Counter({
      name: "plc2mqtt_events_total",
      help: "Events produced, by device, tag (the event subject) and type",
      labelNames: ["device", "tag", "type"],
      registers,
      collect() {
        this.reset();
        for (const [device, types] of counts)
          for (const [type, tags] of types)
            for (const [tag, cell] of tags) this.inc({ device, tag, type }, cell.n);
      },
    });
    new Counter({
      name: "plc2mqtt_engine_events_total",
      help: "Events produced, by type",
      labelNames: ["type"],
      registers,
      collect() {
        this.reset();
        const byType = new Map<string, number>();
        for (const types of counts.values())
          for (const [type, tags] of types)
            for (const cell of tags.values()) byType.set(type, (byType.get(type) ?? 0) + cell.n);
        for (const [type, n] of byType) this.inc({ type }, n);
      },
    });
    new Gauge({
      name: "plc2mqtt_device_last_good_read_age_seconds",
      help: "Seconds since the device last delivered a good or uncertain value (absent before the first)",
      labelNames: ["device"],
      registers,
      collect() {
        this.reset();
        const now = sources.now();
        for (const d of sources.devices())
          if (d.lastGoodReadAt !== undefined)
            this.set({ device: d.id }, Math.max(0, now - d.lastGoodReadAt) / 1000);
      },
    });
    new Gauge({
      name: "plc2mqtt_device_connected",
      help: "1 while the device is connected, else 0",
      labelNames: ["device"],
      registers,
      collect() {
        this.reset();
        for (const d of sources.devices())
          this.set({ device: d.id }, d.status === "connected" ? 1 : 0);
      },
    });
    new Counter({
      name: "plc2mqtt_driver_retries_total",
      help: "Transient failures (busy, gateway exceptions, a single timeout) the driver retried within a poll, by device",
      labelNames: ["device"],
      registers,
      collect() {
        this.reset();
        for (const d of sources.devices())
          if (d.retries !== undefined) this.inc({ device: d.id }, d.retries);
      },
    });
    this.journalSeries(sources);
    this.publisherSeries(sources);
    if (sources.overload) this.overloadSeries(sources.overload);
    this.setAsideSeries(sources);
    mirroredCounter(
      this.registry,
      "plc2mqtt_engine_ignored_samples_total",
      "Samples of devices or tags the engine does not know",
      () => sources.engine().ignoredSamples,
    );
    gauge(this.registry, "plc2mqtt_healthy", "1 while /healthz answers 200, else 0", () =>
      sources.healthy() ? 1 : 0,
    );
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  private journalSeries(sources: MetricsSources): void {
    const r = this.registry;
    const j = sources.journal;
    gauge(
      r,
      "plc2mqtt_journal_pending_events",
      "Events not yet acknowledged by the broker",
      () => j().pending,
    );
    gauge(r, "plc2mqtt_journal_bytes", "Size of the journal on disk", () => j().bytes);
    gauge(
      r,
      "plc2mqtt_journal_oldest_pending_age_seconds",
      "Age of the oldest unacknowledged event, by its event time (0 when none)",
      () => {
        const t = j().oldestPendingTime;
        return t === undefined ? 0 : Math.max(0, sources.now() - t) / 1000;
      },
    );
    gauge(
      r,
      "plc2mqtt_journal_last_commit_seconds",
      "Duration of the last group commit",
      () => j().lastCommitMs / 1000,
    );
    gauge(r, "plc2mqtt_journal_last_sequence", "Highest sequence number assigned", () =>
      Number(j().lastSequence),
    );
    gauge(r, "plc2mqtt_journal_queued_events", "Events waiting to be appended to the journal", () =>
      sources.queuedEvents(),
    );
    mirroredCounter(
      r,
      "plc2mqtt_journal_dropped_events_total",
      "Events dropped by the journal's size policy",
      () => j().dropped,
    );
    mirroredCounter(
      r,
      "plc2mqtt_journal_corrupt_skipped_total",
      "Corrupt journal records or pages skipped since start",
      () => j().corruptSkipped,
    );
  }

  private publisherSeries(sources: MetricsSources): void {
    const r = this.registry;
    const p = sources.publisher;
    gauge(r, "plc2mqtt_publisher_connected", "1 while connected to the broker, else 0", () => {
      const s = p();
      return s === undefined ? undefined : s.connected ? 1 : 0;
    });
    gauge(
      r,
      "plc2mqtt_publisher_in_flight_messages",
      "Events sent and not yet acknowledged",
      () => p()?.inFlight,
    );
    mirroredCounter(
      r,
      "plc2mqtt_publisher_published_total",
      "Events acknowledged by the broker (PUBACK)",
      () => p()?.published,
    );
    mirroredCounter(
      r,
      "plc2mqtt_publisher_resent_total",
      "Events sent again after a connection loss",
      () => p()?.resent,
    );
    mirroredCounter(
      r,
      "plc2mqtt_publisher_reconnects_total",
      "Broker connections made after the first one",
      () => p()?.reconnects,
    );
  }

  /**
   * Overload (overload.ts): telemetry changes folded into a later event of their tag, by device
   * (so events_total{type="plc2mqtt.telemetry"} = telemetry journaled + these), tags whose
   * telemetry is held now, whether telemetry is being conflated, events the event sink dropped.
   */
  private overloadSeries(stats: () => OverloadStats): void {
    const r = this.registry;
    new Counter({
      name: "plc2mqtt_telemetry_conflated_total",
      help: "Telemetry changes folded into a later event of the same tag by the overload policy (that event's data.conflated counts them), by device",
      labelNames: ["device"],
      registers: [r],
      collect() {
        this.reset();
        for (const [device, n] of stats().conflated) this.inc({ device }, n);
      },
    });
    gauge(
      r,
      "plc2mqtt_overload_held_tags",
      "Tags whose latest telemetry is held by the overload policy, waiting to go out",
      () => stats().heldTags,
    );
    gauge(r, "plc2mqtt_overload_conflating", "1 while telemetry is being conflated, else 0", () =>
      stats().overloaded ? 1 : 0,
    );
    mirroredCounter(
      r,
      "plc2mqtt_event_queue_dropped_total",
      "Events dropped before the journal: the queue to the journal was full, or the journal refused the event",
      () => stats().queueDropped,
    );
  }

  /**
   * Events set aside (the broker refused them for good): counted since start by a bounded
   * class of the refusal, and how many the journal still keeps (a replay that gets them
   * through lowers it).
   */
  private setAsideSeries(sources: MetricsSources): void {
    new Counter({
      name: "plc2mqtt_events_set_aside_total",
      help: "Events set aside since start: refused by the broker for good, kept in the journal, not published; by reason (packet_too_large, not_authorized, topic_name_invalid, payload_format_invalid, refused, connection_closed)",
      labelNames: ["reason"],
      registers: [this.registry],
      collect() {
        this.reset();
        const counts = sources.publisher()?.setAside;
        if (counts === undefined) return;
        for (const reason of SET_ASIDE_CLASSES) this.inc({ reason }, counts[reason] ?? 0);
      },
    });
    gauge(
      this.registry,
      "plc2mqtt_journal_set_aside_events",
      "Events set aside and still kept in the journal (plc2mqtt events --set-aside lists them)",
      () => sources.journal().setAside,
    );
  }

  /** A poll ended (DriverRunner's onPoll). */
  onPoll(device: string, report: PollReport): void {
    this.polls.inc({ device });
    if (report.skipped) this.pollsSkipped.inc({ device }, report.skipped);
    this.readDuration.observe({ device }, report.durationMs / 1000);
    if (report.error !== undefined) {
      const code = (report.error as { code?: unknown }).code;
      this.readErrors.inc({
        device,
        code: codeLabel(typeof code === "string" ? code : undefined, this.codes),
      });
      return;
    }
    const byQuality = new Map<string, number>();
    const byCode = new Map<string, number>();
    for (const s of report.samples ?? []) {
      byQuality.set(s.quality, (byQuality.get(s.quality) ?? 0) + 1);
      if (s.quality !== "bad") continue;
      const code = codeLabel(s.reasonCode, this.codes);
      byCode.set(code, (byCode.get(code) ?? 0) + 1);
    }
    for (const [quality, n] of byQuality) this.tagReads.inc({ device, quality }, n);
    for (const [code, n] of byCode) this.readErrors.inc({ device, code }, n);
  }

  /** Events on their way to the journal. */
  onEvents(events: readonly GatewayEvent[]): void {
    // events come in runs of one device and type: their maps are looked up once a run
    let device: string | undefined;
    let type: string | undefined;
    let tags: Map<string, { n: number }> | undefined;
    for (const e of events) {
      if (tags === undefined || e.device !== device || e.type !== type) {
        device = e.device;
        type = e.type;
        let types = this.eventCounts.get(device);
        if (types === undefined) {
          types = new Map();
          this.eventCounts.set(device, types);
        }
        tags = types.get(type);
        if (tags === undefined) {
          tags = new Map();
          types.set(type, tags);
        }
      }
      const cell = tags.get(e.subject);
      if (cell === undefined) tags.set(e.subject, { n: 1 });
      else cell.n++;
    }
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    this.journalStats = undefined;
    try {
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    } finally {
      this.journalStats = undefined;
    }
  }
}
