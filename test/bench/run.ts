/**
 * `npm run bench`: the end-to-end scenarios (e2e/scenarios.ts) against the built CLI, and the
 * micro benchmarks of the parts, each its own suite. Prints one JSON object per line on stdout
 * (scenario, metric, value, unit, load1) and writes a Markdown table (its path goes to
 * stderr). Exits 1 when a micro benchmark with a target misses it. Figures are for comparing
 * within one run on one machine, never for timed tests.
 *
 *   npm run bench -- --quick                        a few seconds per scenario
 *   npm run bench -- --scenario modbus-small,backlog --duration 60
 *   npm run bench -- --scenario micro               the micro benchmarks only
 *
 * Scenarios: modbus-small, modbus-small-spread (the same with spread_requests: true and a 5
 * ms commit_interval), modbus-small-b2b (spread_requests: false: every poll back to back),
 * modbus-large, opcua, backlog, soak (e2e), queries (events queries
 * on a journal of query-events events, query-bench.ts), and micro (journal, publish, Modbus
 * driver and simulator). Knobs, as --name value or BENCH_NAME in the
 * environment (defaults, then --quick's): duration (30, 3) s, warmup (10, 1) s, ceiling (10,
 * 2) s, backlog (1000000, 20000) events, soak (300, 5) s, drain-cap (300, 30) s, small (1000)
 * and large (10000) registers, opcua-items (10000), query-events (1000000, 20000), out (bench-<time>.md in the temp folder).
 * --batch <max_events>[,<max_delay>] (BENCH_BATCH) turns telemetry batching on in the
 * gateway's config (e2e/gateway.ts): `npm run bench -- --scenario modbus-large --batch 100`.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { batchConfig } from "./e2e/gateway.ts";
import { Report } from "./e2e/report.ts";
import { type Knobs, SCENARIOS } from "./e2e/scenarios.ts";
import { journalThroughput } from "./journal-bench.ts";
import { driverThroughput, loadSourceCapacity, simulatorLatency } from "./modbus-bench.ts";
import { publishThroughput } from "./publish-bench.ts";
import { queryScenario } from "./query-bench.ts";
import type { BenchResult } from "./result.ts";

const MICRO: [string, () => Promise<BenchResult[]>][] = [
  ["simulator latency", () => simulatorLatency()],
  ["modbus load source capacity", () => loadSourceCapacity()],
  ["driver throughput", () => driverThroughput()],
  ["journal throughput", () => journalThroughput()],
  ["journal to broker", () => publishThroughput()],
];

const KNOBS = [
  "duration",
  "warmup",
  "ceiling",
  "backlog",
  "soak",
  "drain-cap",
  "small",
  "large",
  "opcua-items",
  "query-events",
] as const;
const { values: args } = parseArgs({
  options: {
    scenario: { type: "string" },
    quick: { type: "boolean", default: process.env.BENCH_QUICK === "1" },
    out: { type: "string" },
    batch: { type: "string" },
    ...Object.fromEntries(KNOBS.map((k) => [k, { type: "string" as const }])),
  },
});

function knob(name: (typeof KNOBS)[number], full: number, quick: number): number {
  const text =
    (args as unknown as Record<string, string | undefined>)[name] ??
    process.env[`BENCH_${name.toUpperCase().replace("-", "_")}`];
  if (text === undefined) return args.quick ? quick : full;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`--${name} takes a number, not ${JSON.stringify(text)}`);
  return n;
}

const knobs: Knobs = {
  durationS: knob("duration", 30, 3),
  warmupS: knob("warmup", 10, 1),
  ceilingS: knob("ceiling", 10, 2),
  backlogEvents: knob("backlog", 1_000_000, 20_000),
  soakS: knob("soak", 300, 5),
  drainCapS: knob("drain-cap", 300, 30),
  small: knob("small", 1000, 1000),
  large: knob("large", 10_000, 10_000),
  opcuaItems: knob("opcua-items", 10_000, 10_000),
};
const queryEvents = knob("query-events", 1_000_000, 20_000);

/** Every scenario but micro: the end-to-end ones, and the journal queries (query-bench.ts). */
const ALL: Record<string, (r: Report, k: Knobs) => Promise<void>> = {
  ...SCENARIOS,
  queries: (r) => queryScenario(r, queryEvents),
};

const chosen = (args.scenario ?? [...Object.keys(ALL), "micro"].join(","))
  .split(",")
  .map((s) => s.trim());
for (const name of chosen) {
  if (name !== "micro" && !(name in ALL))
    throw new Error(
      `unknown scenario ${name}: one of ${[...Object.keys(ALL), "micro"].join(", ")}`,
    );
}

// the gateway's config reads it (e2e/gateway.ts writeBenchConfig)
if (args.batch !== undefined) process.env.BENCH_BATCH = args.batch;
const batch = process.env.BENCH_BATCH;
const batching = batchConfig(batch) !== ""; // refuses a bad spec before anything starts

const report = new Report();
if (batching)
  report.add(
    "bench",
    "batch_max_events",
    Number(batch!.split(",")[0]),
    "events",
    `telemetry batching on in the gateway (--batch ${batch})`,
  );
const out =
  args.out ??
  process.env.BENCH_OUT ??
  join(tmpdir(), `plc2mqtt-bench-${report.started.toISOString().replace(/[:.]/g, "-")}.md`);
let failed = false;
for (const name of chosen) {
  process.stderr.write(`bench: ${name}...\n`);
  try {
    if (name === "micro") {
      for (const [suite, run] of MICRO) {
        process.stderr.write(`bench: micro ${suite}...\n`);
        for (const result of await run()) {
          report.add(
            `micro:${result.bench}`,
            result.metric,
            result.value,
            result.unit,
            result.target,
          );
          if (result.pass === false) failed = true;
        }
      }
    } else await ALL[name]!(report, knobs);
  } catch (err) {
    failed = true;
    process.stderr.write(`bench: ${name} failed: ${(err as Error).stack ?? String(err)}\n`);
    report.add(name, "error", Number.NaN, "", String((err as Error).message ?? err).slice(0, 300));
  }
}
report.writeMarkdown(out);
process.stderr.write(`bench: table written to ${out}\n`);
process.exitCode = failed ? 1 : 0;
