/**
 * Journal throughput for the benchmark: appends/s with group commit (the default settings)
 * against one transaction per event (commitMaxEvents 1), on real files with
 * synchronous=FULL. Measures only; asserts nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { openJournal } from "../../src/journal/index.ts";
import { events, options } from "./helpers.ts";

export interface JournalBenchResult {
  events: number;
  groupCommit: { eventsPerSecond: number; ms: number };
  perEvent: { eventsPerSecond: number; ms: number };
}

async function run(
  count: number,
  commitMaxEvents: number,
  parent: string,
): Promise<{ eventsPerSecond: number; ms: number }> {
  const dir = mkdtempSync(join(parent, "plc2mqtt-journal-bench-"));
  try {
    const journal = await openJournal(
      options(dir, { commitMaxEvents, commitIntervalMs: 50, maxBytes: 1024 ** 3 }),
    );
    const input = events(count);
    const started = performance.now();
    await Promise.all(input.map((e) => journal.append([e])));
    const ms = performance.now() - started;
    await journal.close();
    return { eventsPerSecond: Math.round((count * 1000) / ms), ms: Math.round(ms) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `events` single-event appends made at once, both ways. `dir` should be on the disk the
 * journal uses in production (the default temp folder may be a RAM disk).
 */
export async function benchJournal(
  opts: { events?: number; perEventEvents?: number; dir?: string } = {},
): Promise<JournalBenchResult> {
  const count = opts.events ?? 20_000;
  const parent = opts.dir ?? tmpdir();
  return {
    events: count,
    groupCommit: await run(count, 1000, parent),
    perEvent: await run(opts.perEventEvents ?? Math.min(count, 2000), 1, parent),
  };
}
