/**
 * The end-to-end scenarios of `npm run bench`. Each starts its own mosquitto, load source and
 * subscriber, runs the built gateway, measures from outside, and ends with its ceiling line.
 *
 * - modbus-<N>: N registers all changing every 100 ms (N x 10 changes/s), one uint16 tag each,
 *   poll 100 ms: delivered events/s and % of changes, conflated, Modbus requests made of
 *   configured (counted at the server), CPU, RSS and its slope, latency read -> subscriber.
 * - opcua-<N>: N monitored doubles changing every 100 ms (test/bench/load/opcua-load.ts).
 * - backlog: the journal filled with the broker unreachable (the gateway itself journals the
 *   10,000-register load), then: time to ready (sd_notify READY=1 and the first /healthz
 *   answer) with the journal's files dropped from the page cache (cold) and again warm, and
 *   the drain to the subscriber while 1,000 live registers keep changing (drain rate, live
 *   rate and live latency during the drain).
 * - soak: modbus-1000 (10k events/s) for minutes: RSS over time and its slope.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startNotifySocket } from "../../service/support.ts";
import { freePort } from "../../support/mosquitto.ts";
import { type BenchBroker, startBenchBroker, unreachableBrokerUrl } from "./broker.ts";
import { type Helper, startHelper } from "./child.ts";
import {
  type GatewaySource,
  metric,
  metricIn,
  metricsText,
  type RunningGateway,
  startGateway,
  writeBenchConfig,
} from "./gateway.ts";
import {
  ceiling,
  delta,
  latency,
  measureWindow,
  reportLatency,
  reportProcs,
  type SubCounts,
  type Subscriber,
  sleep,
  startSubscriber,
  waitFor,
} from "./measure.ts";
import type { Report } from "./report.ts";

export interface Knobs {
  /** Measuring window of the live scenarios, s. */
  durationS: number;
  warmupS: number;
  ceilingS: number;
  /** Events to prefill for the backlog scenario. */
  backlogEvents: number;
  soakS: number;
  /** Longest wait for the backlog to drain, s. */
  drainCapS: number;
  /** Register or item counts. */
  small: number;
  large: number;
  opcuaItems: number;
}

interface LoadCounts {
  requests: number;
  changes: number;
  ticks: number;
  /** Changes no read saw (the Modbus load only: modbus-load.ts). */
  unread?: number;
  time: number;
}

/** Everything one scenario starts, stopped in reverse order whatever happens. */
class Stack {
  readonly dir = mkdtempSync(join(tmpdir(), "plc2mqtt-bench-"));
  readonly #stops: (() => Promise<unknown>)[] = [];
  add<T extends { stop(): Promise<unknown> }>(part: T): T {
    this.#stops.push(() => part.stop());
    return part;
  }
  async close(): Promise<void> {
    for (const stop of this.#stops.reverse()) await stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function firstTelemetry(sub: Subscriber, gw: RunningGateway, timeoutMs: number) {
  const ok = await waitFor(
    async () => (await sub.ask<SubCounts>("counts")).telemetry > 0,
    timeoutMs,
  );
  if (!ok)
    throw new Error(
      `no telemetry within ${timeoutMs} ms; gateway said: ${gw.output().slice(-2000)}`,
    );
}

/**
 * What the journal took in the window (from /metrics), and what is still waiting in it; with
 * the gateway's CPU % of the window, its CPU per event journaled (the unit of issue 12's budget,
 * and the figure to compare across runs whose rates differ).
 */
async function reportJournal(
  r: Report,
  name: string,
  httpBase: string,
  j0: number | undefined,
  seconds: number,
  gatewayCpuPct?: number,
  gc0?: GcTotals,
) {
  // every figure from one answer: the same moment
  const text = (await metricsText(httpBase)) ?? "";
  const gc1 = gcTotalsIn(text);
  if (gc0 && gc1) {
    r.add(
      name,
      "gateway_gc_pause_ms_per_s",
      ((gc1.pauseS - gc0.pauseS) * 1000) / seconds,
      "ms/s",
      "main-thread GC pauses in the window (nodejs_gc_duration_seconds)",
    );
    r.add(
      name,
      "gateway_gc_major_per_s",
      (gc1.majors - gc0.majors) / seconds,
      "1/s",
      "full collections: what reaches V8's old generation sets their pace",
    );
  }
  const j1 = metricIn(text, "plc2mqtt_journal_last_sequence");
  const pending = metricIn(text, "plc2mqtt_journal_pending_events");
  if (j0 !== undefined && j1 !== undefined) {
    r.add(
      name,
      "journaled_events_per_s",
      (j1 - j0) / seconds,
      "events/s",
      "sequences assigned (plc2mqtt_journal_last_sequence)",
    );
    if (gatewayCpuPct !== undefined && j1 > j0)
      r.add(
        name,
        "gateway_cpu_us_per_event",
        ((gatewayCpuPct / 100) * 1e6) / ((j1 - j0) / seconds),
        "CPU us/event",
        "the gateway's CPU over the events journaled in the window",
      );
  }
  if (pending !== undefined) r.add(name, "journal_pending_at_end", pending, "events");
  // Where the gateway's memory sits at the window's end: V8's heap (used, reserved) and the
  // memory outside it (buffers, SQLite and other native allocations count in RSS only).
  for (const [metricName, label] of [
    ["nodejs_heap_size_used_bytes", "gateway_heap_used_mb"],
    ["nodejs_heap_size_total_bytes", "gateway_heap_total_mb"],
    ["nodejs_external_memory_bytes", "gateway_external_mb"],
  ] as const) {
    const bytes = metricIn(text, metricName);
    if (bytes !== undefined) r.add(name, label, bytes / 2 ** 20, "MB", metricName);
  }
}

interface GcTotals {
  /** Seconds of GC pauses so far, every kind. */
  pauseS: number;
  /** Full (mark-compact) collections so far. */
  majors: number;
}

/** The gateway's GC totals in a /metrics text (prom-client's nodejs_gc_duration_seconds). */
function gcTotalsIn(text: string): GcTotals | undefined {
  if (!text.includes("nodejs_gc_duration_seconds")) return undefined;
  // a kind of collection not seen yet has no series
  let pauseS = 0;
  for (const kind of ["minor", "major", "incremental", "weakcb"])
    pauseS += metricIn(text, "nodejs_gc_duration_seconds_sum", `kind="${kind}"`) ?? 0;
  const majors = metricIn(text, "nodejs_gc_duration_seconds_count", `kind="major"`) ?? 0;
  return { pauseS, majors };
}

/** RSS at about ten points of a long window, for the soak's table. */
function reportRssSeries(r: Report, name: string, rss: [number, number][], seconds: number) {
  const every = Math.max(1, seconds / 10);
  let next = 0;
  for (const [t, mb] of rss) {
    if (t + 0.5 < next) continue;
    r.add(name, `gateway_rss_mb_at_${Math.round(t)}s`, mb, "MB");
    next += every;
  }
}

interface LiveParts {
  broker: BenchBroker;
  load: Helper<{ port: number; pid: number }>;
  sub: Subscriber;
  source: GatewaySource;
  commitInterval?: string;
}

/**
 * Starts the gateway on a live load, waits for its first telemetry and the warm-up, then
 * measures a window; reports what the journal took in (from /metrics) beside it.
 */
async function liveRun(r: Report, name: string, s: Stack, p: LiveParts, k: Knobs, seconds: number) {
  const http = await freePort();
  const httpBase = `http://127.0.0.1:${http}`;
  const config = writeBenchConfig({
    dir: s.dir,
    brokerUrl: p.broker.url,
    source: p.source,
    http: `127.0.0.1:${http}`,
    ...(p.commitInterval ? { commitInterval: p.commitInterval } : {}),
  });
  const gw = s.add(startGateway(config));
  await firstTelemetry(p.sub, gw, p.source.kind === "opcua" ? 180_000 : 60_000);
  await sleep(k.warmupS * 1000);
  const l0 = await p.load.ask<LoadCounts>("counts");
  const text0 = (await metricsText(httpBase)) ?? "";
  const j0 = metricIn(text0, "plc2mqtt_journal_last_sequence");
  const gc0 = gcTotalsIn(text0);
  const w = await measureWindow(
    p.sub,
    { gateway: gw.pid, broker: p.broker.pid, load_source: p.load.pid, subscriber: p.sub.pid },
    seconds,
  );
  const l1 = await p.load.ask<LoadCounts>("counts");
  await reportJournal(r, name, httpBase, j0, w.seconds, w.procs.gateway?.cpuPct, gc0);
  return { gw, w, l0, l1 };
}

/**
 * Modbus N registers end to end; `seconds` overrides the window (the soak); `tuning`: the
 * requests spread over the poll (spread_requests) and the journal's commit_interval.
 */
export async function modbusScenario(
  r: Report,
  k: Knobs,
  n: number,
  name = `modbus-${n}`,
  seconds = k.durationS,
  tuning: { spread?: boolean | number; commitInterval?: string } = {},
): Promise<void> {
  const s = new Stack();
  try {
    const broker = s.add(await startBenchBroker());
    const load = s.add(
      await startHelper<{ port: number; pid: number }>("modbus-load", ["--registers", String(n)]),
    );
    const sub = s.add(await startSubscriber(broker, n));
    const source = {
      kind: "modbus" as const,
      port: load.ready.port,
      tags: n,
      spread: tuning.spread,
    };
    const parts = { broker, load, sub, source, commitInterval: tuning.commitInterval } as const;
    const { gw, w, l0, l1 } = await liveRun(r, name, s, parts, k, seconds);
    const loadS = (l1.time - l0.time) / 1000;
    const offered = (l1.changes - l0.changes) / loadS;
    const telemetry = delta(w, "telemetry") / w.seconds;
    r.add(
      name,
      "offered_changes_per_s",
      offered,
      "changes/s",
      `${n} registers, all changing every 100 ms`,
    );
    r.add(name, "delivered_events_per_s", telemetry, "events/s", "telemetry at the subscriber");
    r.add(name, "delivered_pct_of_changes", (100 * telemetry) / offered, "%");
    r.add(
      name,
      "conflated_events",
      delta(w, "conflatedEvents"),
      "events",
      "events carrying data.conflated",
    );
    r.add(name, "conflated_changes", delta(w, "conflatedSum"), "changes", "sum of data.conflated");
    r.add(
      name,
      "unaccounted_changes_pct",
      (100 * delta(w, "unaccounted")) / Math.max(1, delta(w, "changes")),
      "%",
      "ticks passed over between two events of a register, not covered by data.conflated (includes poll phase jitter)",
    );
    if (l0.unread !== undefined && l1.unread !== undefined)
      r.add(
        name,
        "unread_changes_pct",
        (100 * (l1.unread - l0.unread)) / Math.max(1, l1.changes - l0.changes),
        "%",
        "changes no read saw, counted at the server (the poll phase): unaccounted beyond this is the gateway's",
      );
    r.add(
      name,
      "modbus_requests_per_s",
      (l1.requests - l0.requests) / loadS,
      "requests/s",
      "counted at the server",
    );
    r.add(
      name,
      "modbus_requests_configured_per_s",
      (Math.ceil(n / 125) * 1000) / 100,
      "requests/s",
    );
    reportProcs(r, name, w);
    if (name.startsWith("soak")) reportRssSeries(r, name, w.procs.gateway!.rss, seconds);
    reportLatency(r, name, w);
    const bytes = delta(w, "bytes") / Math.max(1, delta(w, "msgs"));
    await gw.stop();
    await ceiling(
      r,
      name,
      broker,
      sub,
      k.ceilingS,
      bytes > 0 ? bytes : 400,
      delta(w, "events") / w.seconds,
    );
  } finally {
    await s.close();
  }
}

export async function opcuaScenario(r: Report, k: Knobs, n: number): Promise<void> {
  const name = `opcua-${n}`;
  const s = new Stack();
  try {
    const broker = s.add(await startBenchBroker());
    const load = s.add(
      await startHelper<{ port: number; pid: number }>(
        "opcua-load",
        ["--items", String(n), "--pki", join(s.dir, "server-pki")],
        180_000,
      ),
    );
    const sub = s.add(await startSubscriber(broker));
    const source = { kind: "opcua", port: load.ready.port, tags: n } as const;
    const { gw, w, l0, l1 } = await liveRun(
      r,
      name,
      s,
      { broker, load, sub, source },
      k,
      k.durationS,
    );
    const loadS = (l1.time - l0.time) / 1000;
    const offered = (l1.changes - l0.changes) / loadS;
    const telemetry = delta(w, "telemetry") / w.seconds;
    r.add(
      name,
      "configured_changes_per_s",
      n * 10,
      "changes/s",
      `${n} doubles, each changing every 100 ms`,
    );
    r.add(
      name,
      "server_changes_per_s",
      offered,
      "changes/s",
      "what the load server managed to write",
    );
    r.add(name, "delivered_events_per_s", telemetry, "events/s");
    r.add(
      name,
      "delivered_pct_of_changes",
      (100 * telemetry) / Math.max(1, offered),
      "%",
      "of the server's changes",
    );
    r.add(name, "conflated_events", delta(w, "conflatedEvents"), "events");
    r.add(name, "conflated_changes", delta(w, "conflatedSum"), "changes");
    reportProcs(r, name, w);
    reportLatency(r, name, w);
    const bytes = delta(w, "bytes") / Math.max(1, delta(w, "msgs"));
    await gw.stop();
    await ceiling(
      r,
      name,
      broker,
      sub,
      k.ceilingS,
      bytes > 0 ? bytes : 400,
      delta(w, "events") / w.seconds,
    );
  } finally {
    await s.close();
  }
}

/** Drops a folder's files from the page cache (GNU dd, fadvise DONTNEED): a cold start. */
function dropFromCache(dir: string): void {
  for (const f of readdirSync(dir)) {
    execFileSync("dd", [`if=${join(dir, f)}`, "iflag=nocache", "count=0", "status=none"]);
  }
}

/** Spawn to READY=1 (sd_notify) and to the first /healthz answer, ms. */
async function timeToReady(config: string, httpBase: string, gwOut: (g: RunningGateway) => void) {
  const notify = await startNotifySocket();
  try {
    const t0 = performance.now();
    const gw = startGateway(config, { NOTIFY_SOCKET: notify.path });
    gwOut(gw);
    let healthz: number | undefined;
    let ready: number | undefined;
    const deadline = Date.now() + 300_000;
    while ((healthz === undefined || ready === undefined) && Date.now() < deadline) {
      if (ready === undefined && notify.messages.some((m) => m.includes("READY=1")))
        ready = performance.now() - t0;
      if (healthz === undefined) {
        try {
          await fetch(`${httpBase}/healthz`, { signal: AbortSignal.timeout(1000) });
          healthz = performance.now() - t0;
        } catch {
          // not listening yet
        }
      }
      await sleep(5);
    }
    return { gw, ready: ready ?? Number.NaN, healthz: healthz ?? Number.NaN };
  } finally {
    await notify.close();
    rmSync(dirname(notify.path), { recursive: true, force: true });
  }
}

export async function backlogScenario(r: Report, k: Knobs): Promise<void> {
  const name = `backlog-${k.backlogEvents}`;
  const s = new Stack();
  try {
    const load = s.add(
      await startHelper<{ port: number; pid: number }>("modbus-load", ["--registers", "10000"]),
    );
    const port = await freePort();
    const httpBase = `http://127.0.0.1:${port}`;
    const offline = await unreachableBrokerUrl();
    // 1. prefill: the gateway journals the 10,000-register load with the broker unreachable
    let config = writeBenchConfig({
      dir: s.dir,
      brokerUrl: offline,
      source: { kind: "modbus", port: load.ready.port, tags: 10_000 },
      http: `127.0.0.1:${port}`,
    });
    const t0 = performance.now();
    const filler = startGateway(config);
    let pending = 0;
    await waitFor(async () => {
      pending = (await metric(httpBase, "plc2mqtt_journal_pending_events")) ?? 0;
      return pending >= k.backlogEvents;
    }, 1_800_000);
    const fillS = (performance.now() - t0) / 1000;
    await filler.stop();
    r.add(
      name,
      "prefill_events",
      pending,
      "events",
      "journaled by the gateway with the broker unreachable",
    );
    r.add(
      name,
      "prefill_events_per_s",
      pending / fillS,
      "events/s",
      "journal only, 10,000 registers offered 100k changes/s",
    );
    const dataDir = join(s.dir, "data");
    const bytes = readdirSync(dataDir).reduce(
      (sum, f) =>
        sum + Number(execFileSync("stat", ["-c", "%s", join(dataDir, f)], { encoding: "utf8" })),
      0,
    );
    r.add(name, "journal_mb", bytes / 1024 / 1024, "MB");

    // 2. cold start, broker still away: nothing drains (the live config: 1,000 registers)
    config = writeBenchConfig({
      dir: s.dir,
      brokerUrl: offline,
      source: { kind: "modbus", port: load.ready.port, tags: 1000 },
      http: `127.0.0.1:${port}`,
    });
    dropFromCache(dataDir);
    let cold: RunningGateway | undefined;
    const c = await timeToReady(config, httpBase, (g) => (cold = g));
    await cold?.stop();
    r.add(
      name,
      "ready_ms_cold",
      c.ready,
      "ms",
      "spawn to sd_notify READY=1, journal dropped from the page cache",
    );
    r.add(name, "healthz_ms_cold", c.healthz, "ms", "spawn to the first /healthz answer");

    // 3. warm start with the broker up and 1,000 live registers: ready, then the drain
    const broker = s.add(await startBenchBroker());
    const sub = s.add(await startSubscriber(broker));
    config = writeBenchConfig({
      dir: s.dir,
      brokerUrl: broker.url,
      source: { kind: "modbus", port: load.ready.port, tags: 1000 },
      http: `127.0.0.1:${port}`,
    });
    await sub.ask("cutoff", Date.now());
    let gw: RunningGateway | undefined;
    const warm = await timeToReady(config, httpBase, (g) => (gw = s.add(g)));
    r.add(name, "ready_ms_warm", warm.ready, "ms", "spawn to sd_notify READY=1, page cache warm");
    r.add(name, "healthz_ms_warm", warm.healthz, "ms");
    let firstBacklog = 0;
    let lastBacklog = 0;
    let lastCount = 0;
    const w = await measureWindow(sub, { gateway: gw!.pid, broker: broker.pid }, 0, async () => {
      const deadline = Date.now() + k.drainCapS * 1000;
      for (;;) {
        const c = await sub.ask<SubCounts>("counts");
        if (c.backlogEvents > lastCount) {
          if (lastCount === 0) firstBacklog = Date.now();
          lastBacklog = Date.now();
          lastCount = c.backlogEvents;
        }
        // live events queue behind the backlog: wait for the first (at most 10 s more)
        const live = c.events - c.backlogEvents > 0;
        if (lastCount >= pending && (live || Date.now() - lastBacklog > 10_000)) break;
        if (lastCount > 0 && Date.now() - lastBacklog > 5000) break; // nothing more came
        if (Date.now() > deadline) break;
        await sleep(200);
      }
    });
    const drainS = Math.max(0.001, (lastBacklog - firstBacklog) / 1000);
    r.add(name, "drained_events", lastCount, "events", `of ${pending} prefilled`);
    r.add(
      name,
      "drain_events_per_s",
      lastCount / drainS,
      "events/s",
      "backlog events at the subscriber, first to last",
    );
    const liveRate = (delta(w, "events") - delta(w, "backlogEvents")) / w.seconds;
    r.add(
      name,
      "live_events_per_s_during_drain",
      liveRate,
      "events/s",
      "1,000 registers offer 10,000 changes/s",
    );
    r.add(
      name,
      "drain_to_live_offered_ratio",
      lastCount / drainS / 10_000,
      "x",
      "drain rate over the live rate offered (10k/s)",
    );
    const l = latency(w, "live");
    r.add(name, "live_latency_p50_ms_during_drain", l.p50 ?? Number.NaN, "ms");
    r.add(name, "live_latency_p99_ms_during_drain", l.p99 ?? Number.NaN, "ms");
    reportProcs(r, name, w);
    await gw?.stop();
  } finally {
    await s.close();
  }
}

export type Scenario = (r: Report, k: Knobs) => Promise<void>;

export const SCENARIOS: Record<string, Scenario> = {
  "modbus-small": (r, k) => modbusScenario(r, k, k.small),
  "modbus-large": (r, k) => modbusScenario(r, k, k.large),
  // the same load with the requests spread over the poll and commits at most 5 ms after the
  // read: the latency the gateway can give (issue 12: p99 from read at most 25 ms), at its CPU
  // price
  "modbus-small-spread": (r, k) =>
    modbusScenario(r, k, k.small, `modbus-${k.small}-spread`, k.durationS, {
      spread: true,
      commitInterval: "5ms",
    }),
  // the requests back to back (spread_requests: false), where the default (auto) puts 1,000
  // registers every 100 ms in 2 steps: what the steps give, at what CPU
  "modbus-small-b2b": (r, k) =>
    modbusScenario(r, k, k.small, `modbus-${k.small}-b2b`, k.durationS, { spread: false }),
  opcua: (r, k) => opcuaScenario(r, k, k.opcuaItems),
  backlog: backlogScenario,
  soak: (r, k) => modbusScenario(r, k, k.small, `soak-${k.small}`, k.soakS),
};

export type { BenchBroker, Helper };
