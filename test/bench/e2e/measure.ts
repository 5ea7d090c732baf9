/**
 * What every end-to-end scenario shares: the subscriber's counters, a measuring window over
 * the gateway, broker, load source and subscriber processes, and the ceiling line (raw mqtt.js
 * QoS 1 to the same broker and subscriber, in the same run).
 */
import type { BenchBroker } from "./broker.ts";
import { type Helper, startHelper } from "./child.ts";
import { difference, quantile } from "./histogram.ts";
import { machineTicks, ProcSampler, type ProcWindow } from "./proc.ts";
import type { Report } from "./report.ts";

export interface SubCounts {
  msgs: number;
  bytes: number;
  events: number;
  telemetry: number;
  backlogEvents: number;
  conflatedEvents: number;
  conflatedSum: number;
  changes: number;
  unaccounted: number;
  repeats: number;
  undecodable: number;
  lastReceipt: number;
}
export interface SubSnapshot extends SubCounts {
  live: number[];
  backlog: number[];
}

export type Subscriber = Helper<{ pid: number }>;

export function startSubscriber(broker: BenchBroker, registers = 0): Promise<Subscriber> {
  return startHelper("subscriber", [
    "--port",
    String(broker.port),
    "--topic",
    "plant/#",
    "--registers",
    String(registers),
  ]);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until `check` holds (polled every 100 ms); false when the time ran out. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

export interface Window {
  seconds: number;
  sub: { start: SubSnapshot; end: SubSnapshot };
  procs: Record<string, ProcWindow>;
  machineBusyPct: number;
}

/** Measures `seconds` over the named processes; the subscriber's snapshot at both ends. */
export async function measureWindow(
  sub: Subscriber,
  pids: Record<string, number>,
  seconds: number,
  during: () => Promise<void> = () => sleep(seconds * 1000),
): Promise<Window> {
  const samplers = Object.entries(pids).map(([k, pid]) => [k, new ProcSampler(pid)] as const);
  const m0 = machineTicks();
  const start = await sub.ask<SubSnapshot>("snapshot");
  const t0 = performance.now();
  for (const [, s] of samplers) s.start();
  await during();
  const end = await sub.ask<SubSnapshot>("snapshot");
  const wall = (performance.now() - t0) / 1000;
  const m1 = machineTicks();
  const procs: Record<string, ProcWindow> = {};
  for (const [k, s] of samplers) procs[k] = s.stop();
  return {
    seconds: wall,
    sub: { start, end },
    procs,
    machineBusyPct: (100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total),
  };
}

export function delta(w: Window, key: keyof SubCounts): number {
  return w.sub.end[key] - w.sub.start[key];
}

/** Latency quantiles of a window (live events, or the backlog's). */
export function latency(w: Window, which: "live" | "backlog" = "live") {
  const h = difference(w.sub.end[which], w.sub.start[which]);
  return { p50: quantile(h, 0.5), p99: quantile(h, 0.99), n: h.reduce((a, b) => a + b, 0) };
}

/** The usual per-process figures of a window. */
export function reportProcs(r: Report, scenario: string, w: Window): void {
  for (const [name, p] of Object.entries(w.procs)) {
    r.add(scenario, `${name}_cpu_pct`, p.cpuPct, "% of one core");
    if (name === "gateway") {
      r.add(scenario, "gateway_rss_mb", p.rssLastMB, "MB");
      r.add(scenario, "gateway_rss_max_mb", p.rssMaxMB, "MB");
      r.add(scenario, "gateway_rss_slope_mb_per_min", p.rssSlopeMBPerMin, "MB/min");
    }
  }
  r.add(scenario, "machine_busy_pct", w.machineBusyPct, "% of all cores");
}

export function reportLatency(r: Report, scenario: string, w: Window, prefix = "latency"): void {
  const l = latency(w);
  r.add(
    scenario,
    `${prefix}_p50_ms`,
    l.p50 ?? Number.NaN,
    "ms",
    "event time (value read) to subscriber",
  );
  r.add(scenario, `${prefix}_p99_ms`, l.p99 ?? Number.NaN, "ms");
}

/**
 * The ceiling: mqtt.js QoS 1 with the gateway's window (1000), messages of the size the
 * gateway's events had, for `seconds`, through the same broker to the same subscriber.
 * Reports events/s received, latency, the publisher's CPU and the gateway's ratio to it.
 */
export async function ceiling(
  r: Report,
  scenario: string,
  broker: BenchBroker,
  sub: Subscriber,
  seconds: number,
  payloadBytes: number,
  gatewayRate: number,
): Promise<void> {
  const pub = await startHelper<{ pid: number }>("ceiling", [
    "--url",
    broker.url,
    "--window",
    "1000",
  ]);
  try {
    let result = { sent: 0, acked: 0, cpuPct: 0 };
    const w = await measureWindow(sub, { broker: broker.pid }, seconds, async () => {
      result = await pub.ask("run", { seconds, size: payloadBytes });
      // what the broker still holds for the subscriber arrives within a moment
      let last = -1;
      for (let i = 0; i < 50; i++) {
        const c = await sub.ask<SubCounts>("counts");
        if (c.msgs === last) break;
        last = c.msgs;
        await sleep(100);
      }
    });
    const received = delta(w, "events");
    const rate = received / seconds;
    r.add(
      scenario,
      "ceiling_events_per_s",
      rate,
      "events/s",
      `raw mqtt.js QoS 1, window 1000, ${Math.round(payloadBytes)}-byte messages, same broker and subscriber`,
    );
    r.add(scenario, "ceiling_acked_per_s", result.acked / seconds, "PUBACKs/s");
    r.add(scenario, "ceiling_publisher_cpu_pct", result.cpuPct, "% of one core");
    r.add(
      scenario,
      "ceiling_us_per_event",
      (result.cpuPct * 10_000) / Math.max(1, result.acked / seconds),
      "CPU us/event",
    );
    const l = latency(w);
    r.add(scenario, "ceiling_latency_p50_ms", l.p50 ?? Number.NaN, "ms", "publish to subscriber");
    r.add(scenario, "ceiling_latency_p99_ms", l.p99 ?? Number.NaN, "ms");
    r.add(
      scenario,
      "ratio_gateway_to_ceiling",
      rate > 0 ? gatewayRate / rate : Number.NaN,
      "x",
      "delivered events/s over the ceiling's",
    );
  } finally {
    await pub.stop();
  }
}
