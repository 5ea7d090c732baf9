/**
 * The benchmark, smoke-tested: every end-to-end scenario of `npm run bench` runs for a couple
 * of seconds with small N against the built CLI, and must put out its figures: one JSON
 * object per line with scenario, metric, a finite number, unit and load average, the
 * Markdown table, and no scenario error. It asserts no speed: figures on a shared machine
 * prove nothing about one (the real run is `npm run bench`, outside `npm test`).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { ROOT } from "../support/cli.ts";

interface Figure {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
  load1: number;
  note?: string;
}

const EXPECTED: Record<string, string[]> = {
  "modbus-50": [
    "delivered_events_per_s",
    "delivered_pct_of_changes",
    "conflated_events",
    "unaccounted_changes_pct",
    "unread_changes_pct",
    "modbus_requests_per_s",
    "journaled_events_per_s",
    "gateway_cpu_pct",
    "gateway_cpu_us_per_event",
    "gateway_rss_mb",
    "gateway_rss_slope_mb_per_min",
    "latency_p50_ms",
    "latency_p99_ms",
    "ceiling_events_per_s",
    "ratio_gateway_to_ceiling",
  ],
  "modbus-50-spread": ["delivered_events_per_s", "gateway_cpu_pct", "latency_p99_ms"],
  "modbus-50-b2b": ["delivered_events_per_s", "gateway_cpu_pct", "latency_p99_ms"],
  "modbus-300": [
    "delivered_events_per_s",
    "modbus_requests_per_s",
    "modbus_requests_configured_per_s",
    "latency_p99_ms",
    "ceiling_events_per_s",
  ],
  "opcua-50": [
    "server_changes_per_s",
    "delivered_events_per_s",
    "gateway_cpu_pct",
    "gateway_rss_mb",
    "latency_p50_ms",
    "ceiling_events_per_s",
  ],
  "backlog-1000": [
    "prefill_events",
    "ready_ms_cold",
    "healthz_ms_cold",
    "ready_ms_warm",
    "drained_events",
    "drain_events_per_s",
    "live_latency_p50_ms_during_drain",
    "live_latency_p99_ms_during_drain",
  ],
  "soak-50": ["gateway_rss_slope_mb_per_min", "gateway_rss_mb", "ceiling_events_per_s"],
  "queries-3000": [
    "events",
    "build_s",
    "journal_mb",
    "device_range_2h_ms",
    "device_day_first100_ms",
    "where_batch_ms",
    "where_batch_latest100_ms",
    "where_number_ms",
    "where_digits_ms",
    "cli_where_batch_ms",
  ],
};

it("every scenario of npm run bench puts out its figures", async () => {
  const out = join(mkdtempSync(join(tmpdir(), "plc2mqtt-bench-smoke-")), "bench.md");
  const args = [
    "test/bench/run.ts",
    "--quick",
    "--scenario",
    "modbus-small,modbus-small-spread,modbus-small-b2b,modbus-large,opcua,backlog,soak,queries",
  ];
  args.push("--small", "50", "--large", "300", "--opcua-items", "50", "--backlog", "1000");
  args.push("--query-events", "3000");
  args.push(
    "--duration",
    "2",
    "--warmup",
    "0",
    "--ceiling",
    "1",
    "--soak",
    "2",
    "--drain-cap",
    "20",
    "--out",
    out,
  );
  const { stdout, stderr, code } = await new Promise<{
    stdout: string;
    stderr: string;
    code: number;
  }>((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: ROOT, timeout: 150_000, maxBuffer: 16 * 1024 * 1024 },
      (err, so, se) =>
        resolve({
          stdout: so,
          stderr: se,
          code: err ? Number((err as { code?: number }).code ?? 1) : 0,
        }),
    );
  });
  const figures = stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Figure);
  expect(
    figures.filter((f) => f.metric === "error"),
    stderr,
  ).toEqual([]);
  expect(code, stderr).toBe(0);
  for (const f of figures) {
    expect(Object.keys(f).sort()).toEqual(
      [
        "load1",
        "metric",
        "scenario",
        "unit",
        "value",
        ...(f.note === undefined ? [] : ["note"]),
      ].sort(),
    );
    expect(typeof f.scenario).toBe("string");
    expect(typeof f.unit).toBe("string");
    expect(Number.isFinite(f.load1), `${f.scenario} ${f.metric} load1`).toBe(true);
  }
  for (const [scenario, metrics] of Object.entries(EXPECTED)) {
    for (const m of metrics) {
      const f = figures.find((x) => x.scenario === scenario && x.metric === m);
      expect(f, `${scenario} ${m} missing`).toBeDefined();
      expect(Number.isFinite(f!.value), `${scenario} ${m} = ${f!.value}`).toBe(true);
    }
  }
  const table = readFileSync(out, "utf8");
  for (const scenario of Object.keys(EXPECTED)) expect(table).toContain(`## ${scenario}`);
}, 180_000);
