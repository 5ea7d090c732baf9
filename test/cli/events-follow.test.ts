/**
 * Issue 14: `plc2mqtt events --follow`, the built CLI, while a second process writes the
 * journal (fixtures/journal-writer.ts): it starts on a closed journal (no -wal: read
 * `immutable`), prints what is there, then every event committed later, once, in sequence
 * order, across old rows deleted, a TRUNCATE checkpoint, the writer closing and opening the
 * journal again, and the journal file moved aside for a new one; with --where only the matching ones, as table rows; SIGINT and SIGTERM end it
 * with exit 0.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import { event, options } from "../journal/helpers.ts";
import { spawnCli } from "../support/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-events-follow-"));
const data = join(dir, "data");
const config = join(dir, "gateway.yaml");
const WRITER = new URL("./fixtures/journal-writer.ts", import.meta.url).pathname;
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** A follower's stdout lines, and a wait for a condition on them. */
function follower(args: readonly string[]) {
  const child = spawnCli(["events", "-c", config, "--follow", ...args]);
  children.push(child);
  let out = "";
  let err = "";
  const waiters: (() => void)[] = [];
  child.stdout!.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of waiters) w();
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    lines: () => out.split("\n").filter((l) => l !== ""),
    stderr: () => err,
    exited,
    child,
    /** Resolves once `ok` holds on the lines; rejects when the process ends first, or after 30 s. */
    until(ok: (lines: string[]) => boolean, what: string): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${what}; printed:\n${out}${err}`)),
          30_000,
        );
        const check = () => {
          if (ok(out.split("\n").filter((l) => l !== ""))) {
            clearTimeout(timer);
            resolve();
          }
        };
        waiters.push(check);
        void exited.then(() => reject(new Error(`follower ended before ${what}: ${out}\n${err}`)));
        check();
      });
    },
  };
}

function runWriter(batches: number): Promise<bigint[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [WRITER, data, String(batches)],
      { timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`writer failed: ${stderr}`, { cause: error }));
        else
          resolve(
            stdout
              .trim()
              .replace(/^done /, "")
              .split(" ")
              .map(BigInt),
          );
      },
    );
    children.push(child);
  });
}

it("prints new events as they are committed by another process, until SIGINT", async () => {
  writeFileSync(config, `version: 1\ngateway: { id: gw-1, data_dir: ${data} }\n`);
  const journal = await openJournal(options(data, { integrityCheck: false }));
  const first = await journal.append([
    event({ context: { batch_id: "B-1" } }),
    event({ context: { batch_id: "B-0" } }),
  ]);
  await journal.close();

  const json = follower(["--format", "json"]);
  const table = follower(["--where", "batch_id=B-1"]);
  const seq = (line: string) => BigInt((JSON.parse(line) as { sequence: string }).sequence);
  await json.until((l) => l.length === 2, "the events already there");
  await table.until((l) => l.length === 3, "the table header, rule and first row");
  expect(json.lines().map(seq)).toEqual(first.map((r) => r.sequence));
  expect(table.lines()[0]).toMatch(/^time\s+sequence\s+type\s+device\/subject\s+data\s+status$/);

  const written = await runWriter(10);
  expect(written).toHaveLength(20);
  const everything = [...first.map((r) => r.sequence), ...written];
  await json.until((l) => l.length === everything.length, "every event written");
  expect(json.lines().map(seq)).toEqual(everything);
  // B-1: the first event, then the odd batches of the writer (two events each)
  const matching = [first[0]!.sequence, ...written.filter((_, i) => Math.floor(i / 2) % 2 === 1)];
  await table.until((l) => l.length === 2 + matching.length, "every B-1 event");
  const rows = table.lines().slice(2);
  expect(rows.map((r) => BigInt(r.split(/\s+/)[1]!))).toEqual(matching);
  expect(rows.every((r) => /\splc2mqtt\.telemetry\s+press-1\/temperature\s/.test(r))).toBe(true);

  // the journal moved aside (as the daemon does with a damaged one) and a new one begun: its
  // sequences go on above the old ones (journal.seq), and the follower reads the new file
  for (const suffix of ["", "-wal", "-shm"]) {
    const path = join(data, `journal.sqlite${suffix}`);
    if (existsSync(path)) renameSync(path, `${path}.moved`);
  }
  const fresh = await openJournal(options(data, { integrityCheck: false }));
  const later = await fresh.append([event({ context: { batch_id: "B-1" } })]);
  await fresh.close();
  expect(later[0]!.sequence).toBeGreaterThan(everything.at(-1)!);
  await json.until((l) => l.length === everything.length + 1, "the event of the new file");
  expect(json.lines().map(seq)).toEqual([...everything, later[0]!.sequence]);

  json.child.kill("SIGINT");
  table.child.kill("SIGTERM");
  expect(await json.exited, json.stderr()).toBe(0);
  expect(await table.exited, table.stderr()).toBe(0);
  // A read may meet the file briefly missing (renamed) or locked (TRUNCATE): said, then
  // retried. Never anything else, and never a stale immutable read ("malformed").
  for (const f of [json, table]) {
    const lines = f
      .stderr()
      .split("\n")
      .filter((l) => l !== "");
    expect(f.stderr()).not.toMatch(/malformed/);
    for (const line of lines)
      expect(line).toMatch(/^(cannot read the journal \(retrying\): |journal readable again)/);
  }
}, 90_000);
