/**
 * The `queries` scenario of `npm run bench` (issue 14): a journal of N events (default
 * 1,000,000; three devices, seven days of history up to now, test/journal/history.ts: 2,000-step
 * batches, a context batch_id on every event, batch.completed triggers with a snapshot),
 * written through the journal's own append API, then the questions of `plc2mqtt events`
 * asked through the code path the CLI uses (filterQuery + selectEvents on a read-only reader),
 * each three times, the median reported:
 *   - device_range_2h_ms: one device, a 2-hour range in the middle, every event of it;
 *   - device_day_first100_ms: one device, a day from its start, the first 100 (the default limit);
 *   - where_batch_ms: --where batch_id=<a batch in the middle> --from -7d, the batch's whole story;
 *   - where_batch_latest100_ms: the same without --from (the latest 100, read backwards);
 *   - where_number_ms: --where good_count=<n> (a number or a string: two prefilter needles,
 *     behind the key, which only the batch.completed snapshots hold);
 *   - where_digits_ms: --where order=<digits> (a context tag of every event, two needles: the
 *     worst case);
 *   - cli_where_batch_ms: the built CLI, start to exit, for the batch's story as a table.
 * The page cache is warm (the journal was just written): the figures are the query's own cost.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filterQuery, selectEvents } from "../../src/cli/commands/events.ts";
import { openJournalReader } from "../../src/journal/index.ts";
import { batchId, goodCount, history, writeHistory } from "../journal/history.ts";
import { CLI } from "../support/cli.ts";
import type { Report } from "./e2e/report.ts";

const DAY = 86_400_000;
const DEVICES = ["filler-1", "press-1", "press-2"];
const BATCH_STEPS = 2000;

export async function queryScenario(r: Report, events: number): Promise<void> {
  const name = `queries-${events}`;
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-bench-queries-"));
  try {
    const now = Date.now();
    const start = now - 7 * DAY + 60_000;
    // about 2 % of the events are batch and alarm events beside one telemetry event a step
    const steps = Math.max(BATCH_STEPS, Math.round(events / DEVICES.length / 1.02));
    const stepMs = Math.floor((7 * DAY - 120_000) / steps);
    const data = join(dir, "data");
    const began = performance.now();
    const written = await writeHistory(
      data,
      history({ start, devices: DEVICES, steps, stepMs, batchSteps: BATCH_STEPS }),
    );
    r.add(name, "events", written, "events", "3 devices, 7 days, batches of 2000 steps");
    r.add(name, "build_s", (performance.now() - began) / 1000, "s", "through Journal.append");
    r.add(name, "journal_mb", statSync(join(data, "journal.sqlite")).size / 1e6, "MB");

    const config = join(dir, "gateway.yaml");
    writeFileSync(config, `version: 1\ngateway: { id: gw-1, data_dir: ${data} }\n`);
    const batches = Math.floor((steps / BATCH_STEPS) * DEVICES.length);
    const batch = Math.max(1, Math.floor(batches / 2));
    const mid = start + 3.5 * DAY;
    const iso = (t: number) => new Date(t).toISOString();
    const reader = openJournalReader(data);
    try {
      const ask = (
        metric: string,
        options: Record<string, unknown>,
        limit: number,
        note: string,
      ) => {
        const query = filterQuery({ config, ...options }, now);
        const times: number[] = [];
        let matched = 0;
        for (let i = 0; i < 3; i++) {
          const t = performance.now();
          matched = selectEvents(reader, query, limit, options.from !== undefined).records.length;
          times.push(performance.now() - t);
        }
        times.sort((a, b) => a - b);
        r.add(name, metric, times[1]!, "ms", `${note}: ${matched} events (median of 3)`);
      };
      const range = { device: "press-1", from: iso(mid), to: iso(mid + 2 * 3_600_000) };
      ask("device_range_2h_ms", range, 1_000_000, "--device --from --to, 2 h");
      ask(
        "device_day_first100_ms",
        { device: "press-1", from: iso(mid) },
        100,
        "--device --from, 1st 100",
      );
      const where = [`batch_id=${batchId(batch)}`];
      ask("where_batch_ms", { where, from: "-7d" }, 1_000_000, `--where ${where[0]} --from -7d`);
      ask("where_batch_latest100_ms", { where }, 100, `--where ${where[0]}, latest 100`);
      const count = `good_count=${goodCount(batch)}`;
      ask("where_number_ms", { where: [count], from: "-7d" }, 1_000_000, `--where ${count}`);
      const order = `order=${1000 + batch}`; // digits in every event's context: the worst case
      ask("where_digits_ms", { where: [order], from: "-7d" }, 1_000_000, `--where ${order}`);
    } finally {
      reader.close();
    }
    const args = ["events", "-c", config, "--where", `batch_id=${batchId(batch)}`];
    args.push("--from", "-7d", "--limit", "1000000");
    const t = performance.now();
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 ** 2 }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    r.add(name, "cli_where_batch_ms", performance.now() - t, "ms", "the built CLI, start to exit");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
