/**
 * The floor of the journal's record layout, for the layout decision issue 12 leaves to
 * steering (a cheaper record than a row per event): bare node:sqlite, no gateway code, the
 * journal's pragmas (WAL, synchronous = FULL, 4 KiB pages, incremental auto-vacuum), 10,000
 * events a second in group commits of `per` events, a TRUNCATE checkpoint every second.
 *
 *   row    one row per event, as the journal writes them now (records: eleven columns, the
 *          time index; a SHA-256 chain hash per event);
 *   batch  one row per group commit: the group's topics and payloads in one blob, its
 *          sequence range and time range, one chain hash per group (what a layout of batches
 *          would cost at least; queries by device or tag would then read batches).
 *   row-blocks  the row layout without the time index: one row per group commit in a table of
 *          time blocks (its sequence range and time range, indexed by its latest time) that a
 *          query by time would narrow its sequences with.
 *   row-thread  the row layout with SQLite on a worker thread: the main thread makes the rows
 *          (chain hash included) and posts each group; the worker inserts, commits and
 *          checkpoints (what a journal that owns a thread would take off the event loop, and
 *          what the hand-over costs).
 *
 * Prints one JSON line per layout: user and system CPU microseconds per event, for the whole
 * process and for the main thread alone.
 *
 *   node test/bench/journal-layout.ts [seconds=10] [per=125] [dir=$TMPDIR]
 */
import { hash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

const seconds = Number(process.argv[2] ?? 10);
const per = Number(process.argv[3] ?? 125);
const base = process.argv[4] ?? tmpdir();
const RATE = 10_000;

const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE cursors (sink TEXT PRIMARY KEY, done_through INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE records (sequence INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL,
  device TEXT NOT NULL, subject TEXT NOT NULL, time INTEGER NOT NULL, topic TEXT NOT NULL,
  retain INTEGER NOT NULL, payload TEXT NOT NULL, crc INTEGER NOT NULL, hash BLOB);
CREATE INDEX records_time ON records(time);
CREATE TABLE batches (first INTEGER PRIMARY KEY, last INTEGER NOT NULL, time_min INTEGER NOT NULL,
  time_max INTEGER NOT NULL, body BLOB NOT NULL, hash BLOB NOT NULL);
CREATE INDEX batches_time ON batches(time_min);`;

/** 1,000 CloudEvents documents of the gateway's size (about 380 bytes). */
const PAYLOADS = Array.from({ length: 1000 }, (_, i) =>
  `{"specversion":"1.0","id":"bench-${i}","source":"plc2mqtt://bench/line1","type":"plc2mqtt.telemetry","subject":"r${i}","time":"2026-12-06T17:00:00.000Z","sequence":"00000000000000000001","datacontenttype":"application/json","site":"bench","data":{"previous":${i},"quality":"good","reason":"change","value":${i + 1}}}`.padEnd(
    380,
    " ",
  ),
);

type Layout = "row" | "batch" | "row-blocks" | "row-thread";

const BLOCKS_SCHEMA = `
DROP INDEX records_time;
CREATE TABLE time_blocks (first INTEGER PRIMARY KEY, last INTEGER NOT NULL,
  time_min INTEGER NOT NULL, time_max INTEGER NOT NULL);
CREATE INDEX time_blocks_max ON time_blocks(time_max);`;

/** The journal's file, pragmas and statements; `write` commits one group (and checkpoints). */
function openFile(path: string, commitsPerSecond: number, blocks = false) {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA page_size = 4096; PRAGMA auto_vacuum = INCREMENTAL;");
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
  db.exec(SCHEMA);
  if (blocks) db.exec(BLOCKS_SCHEMA);
  const insertBlock = blocks ? db.prepare("INSERT INTO time_blocks VALUES (?,?,?,?)") : undefined;
  const insertRow = db.prepare("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  const insertBatch = db.prepare("INSERT INTO batches VALUES (?,?,?,?,?,?)");
  const meta = db.prepare("INSERT OR REPLACE INTO meta VALUES ('high_water', ?)");
  const cursor = db.prepare("INSERT OR REPLACE INTO cursors VALUES ('mqtt', ?)");
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  let commits = 0;
  /** rows: 11 values a record; batch: the batch row's 6 values. */
  const write = (rows: SQLInputValue[][], batch: SQLInputValue[] | undefined, last: number) => {
    db.exec("BEGIN IMMEDIATE");
    for (const row of rows) insertRow.run(...row);
    if (insertBlock !== undefined && rows.length > 0) {
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const row of rows) {
        min = Math.min(min, row[5] as number);
        max = Math.max(max, row[5] as number);
      }
      insertBlock.run(rows[0]![0]!, last, min, max);
    }
    if (batch !== undefined) insertBatch.run(...batch);
    meta.run(String(last));
    cursor.run(last - per); // the group before this one acknowledged, in every layout
    db.exec("COMMIT");
    if (++commits % commitsPerSecond === 0) checkpoint.get();
  };
  return { db, write };
}

if (!isMainThread) {
  const { path, commitsPerSecond } = workerData as { path: string; commitsPerSecond: number };
  const file = openFile(path, commitsPerSecond);
  parentPort!.on("message", (m: { rows: SQLInputValue[][]; last: number } | "close") => {
    if (m === "close") {
      file.db.close();
      parentPort!.postMessage("closed");
      return;
    }
    file.write(m.rows, undefined, m.last);
    parentPort!.postMessage(m.last);
  });
}

async function measure(layout: Layout): Promise<void> {
  const dir = mkdtempSync(join(base, "plc2mqtt-journal-layout-"));
  const path = join(dir, "journal.sqlite");
  const commitsPerSecond = Math.max(1, Math.round(RATE / per));
  const inline =
    layout === "row-thread" ? undefined : openFile(path, commitsPerSecond, layout === "row-blocks");
  const worker =
    layout === "row-thread"
      ? new Worker(new URL(import.meta.url), { workerData: { path, commitsPerSecond } })
      : undefined;
  let acked = 0;
  worker?.on("message", (m: number | "closed") => {
    if (typeof m === "number") acked = m;
  });
  try {
    const total = RATE * seconds;
    const every = (per * 1000) / RATE;
    let link: Uint8Array = new Uint8Array(32);
    let sequence = 0;
    let commits = 0;
    const cpu = process.cpuUsage();
    const mainCpu = process.threadCpuUsage();
    const start = performance.now();
    while (sequence < total) {
      const now = Date.now();
      const rows: SQLInputValue[][] = [];
      let batch: SQLInputValue[] | undefined;
      if (layout !== "batch") {
        for (let i = 0; i < per; i++) {
          sequence++;
          const payload = PAYLOADS[sequence % 1000]!;
          link = hash("sha256", Buffer.concat([link, Buffer.from(payload)]), "buffer");
          const tag = `r${sequence % 1000}`;
          rows.push([
            sequence,
            `bench-${sequence}`,
            "plc2mqtt.telemetry",
            "line1",
            tag,
            now,
            `plant/bench/telemetry/${tag}`,
            0,
            payload,
            12345,
            link,
          ]);
        }
      } else {
        const first = sequence + 1;
        const parts: string[] = [];
        for (let i = 0; i < per; i++) {
          sequence++;
          parts.push(`plant/bench/telemetry/r${sequence % 1000}\n${PAYLOADS[sequence % 1000]}`);
        }
        const body = Buffer.from(parts.join("\u0000"));
        link = hash("sha256", Buffer.concat([link, body]), "buffer");
        batch = [first, sequence, now, now, body, link];
      }
      if (worker !== undefined) worker.postMessage({ rows, last: sequence });
      else inline!.write(rows, batch, sequence);
      commits++;
      const wait = start + commits * every - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    while (worker !== undefined && acked < total) await new Promise((r) => setTimeout(r, 2));
    const used = process.cpuUsage(cpu);
    const main = process.threadCpuUsage(mainCpu);
    const us = (micros: number) => +(micros / total).toFixed(2);
    console.log(
      JSON.stringify({
        layout,
        events_per_commit: per,
        user_us_per_event: us(used.user),
        system_us_per_event: us(used.system),
        main_thread_user_us_per_event: us(main.user),
        main_thread_system_us_per_event: us(main.system),
      }),
    );
  } finally {
    if (worker !== undefined) {
      const closed = new Promise((r) => worker.on("message", (m) => m === "closed" && r(m)));
      worker.postMessage("close");
      await closed;
      await worker.terminate();
    }
    inline?.db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  const layouts = ["row", "row-blocks", "batch", "row-thread"] as const;
  for (const layout of [...layouts, ...layouts]) await measure(layout);
}
