/**
 * Kills inside group commits, and torn WAL files, on the real journal files.
 *
 * A writer appends batches of 2,000 events back to back (a commit is nearly always running)
 * and is killed with SIGKILL at a random moment. Then:
 * 1. Killed during a commit: every batch whose append resolved is in the journal, and every
 *    batch is there whole or not at all.
 * 2. Torn WAL, what it may lose, precisely. SQLite's WAL recovery keeps a transaction only
 *    when its commit frame (the frame whose header holds the database size) and every frame
 *    before it are whole, with matching salts and chained checksums; anything after the last
 *    such frame is an uncommitted tail. So:
 *    - a torn tail (the -wal cut anywhere after the last commit frame: the commit that was
 *      being written when the process died, which never returned) loses nothing that
 *      committed: the journal opens as it is and holds exactly what the kill left;
 *    - a deeper cut (a disk that lost frames already fsynced: outside the crash model) loses
 *      every transaction from the cut on and none before it, batches whole or absent, when
 *      the main file holds no page newer than the cut; when a checkpoint had already copied
 *      later pages into it, old and new pages mix, and that is damage: the journal moves the
 *      file aside and salvages what it can read (store.ts rule 2).
 *    Whatever the cut, the journal opens and appends above every sequence it kept.
 *
 * `npm test` runs CHAOS_TORN_ROUNDS (default 3) rounds; `npm run test:chaos` 30.
 */
import { spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { openJournal, verifyJournal } from "../../src/journal/index.ts";
import { event, options } from "../journal/helpers.ts";

const ROUNDS = Number(process.env.CHAOS_TORN_ROUNDS ?? 3);
const BATCH = 2000;
const WRITER = join(import.meta.dirname, "fixtures", "commit-writer.ts");
const DB = "journal.sqlite";

/** Runs the writer until a random moment after it is ready; returns the batches it saw commit. */
async function writeAndKill(dir: string, afterMs: number): Promise<Set<string>> {
  const child = spawn(process.execPath, [WRITER, dir], { stdio: ["ignore", "pipe", "inherit"] });
  const resolved = new Set<string>();
  let buffered = "";
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  await new Promise<void>((resolve, reject) => {
    child.once("exit", () => reject(new Error("commit writer exited early")));
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === "ready") setTimeout(resolve, afterMs);
        else resolved.add(line);
      }
    });
  });
  child.kill("SIGKILL");
  await exited;
  return resolved;
}

/** Byte offsets where each whole, valid commit frame of the WAL ends (salts and checksums as SQLite checks them). */
function commitEnds(wal: Buffer): number[] {
  if (wal.length < 32) return [];
  const bigEndian = (wal.readUInt32BE(0) & 1) === 1;
  const pageSize = wal.readUInt32BE(8);
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);
  const frame = 24 + pageSize;
  let s0 = 0;
  let s1 = 0;
  const sum = (buf: Buffer, from: number, to: number) => {
    for (let i = from; i < to; i += 8) {
      const a = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
      const b = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
      s0 = (s0 + a + s1) >>> 0;
      s1 = (s1 + b + s0) >>> 0;
    }
  };
  sum(wal, 0, 24);
  if (s0 !== wal.readUInt32BE(24) || s1 !== wal.readUInt32BE(28)) return [];
  const ends: number[] = [];
  for (let off = 32; off + frame <= wal.length; off += frame) {
    if (wal.readUInt32BE(off + 8) !== salt1 || wal.readUInt32BE(off + 12) !== salt2) break;
    sum(wal, off, off + 8);
    sum(wal, off + 24, off + frame);
    if (s0 !== wal.readUInt32BE(off + 16) || s1 !== wal.readUInt32BE(off + 20)) break;
    if (wal.readUInt32BE(off + 4) !== 0) ends.push(off + frame);
  }
  return ends;
}

/**
 * value -> sequence of every record, read with plain SQLite from a copy of db + wal cut at
 * `walBytes`: what SQLite's own recovery keeps of the whole transactions before a cut.
 */
function recovered(dir: string, walBytes: number): Map<string, bigint> {
  const copy = mkdtempSync(join(tmpdir(), "plc2mqtt-torn-expect-"));
  try {
    copyFileSync(join(dir, DB), join(copy, DB));
    if (walBytes > 0) {
      copyFileSync(join(dir, `${DB}-wal`), join(copy, `${DB}-wal`));
      truncateSync(join(copy, `${DB}-wal`), walBytes);
    }
    const db = new DatabaseSync(join(copy, DB));
    try {
      const stmt = db.prepare("SELECT sequence, payload FROM records");
      stmt.setReadBigInts(true);
      return new Map(
        stmt.all().map((r) => [eventValue(String(r.payload)), r.sequence as bigint] as const),
      );
    } finally {
      db.close();
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

function eventValue(payload: string): string {
  return String((JSON.parse(payload) as { data: { value: unknown } }).data.value);
}

/** value -> sequence of every record the journal in `dir` holds (opened the gateway's way). */
async function journaled(dir: string): Promise<Map<string, bigint>> {
  const journal = await openJournal(options(dir, { maxBytes: 256 * 1024 * 1024 }));
  try {
    return new Map(
      journal.query({ limit: 10_000_000 }).map((r) => [eventValue(r.payload), r.sequence] as const),
    );
  } finally {
    await journal.close();
  }
}

/** Batches present in part: each batch must be whole or absent. */
function partialBatches(values: Iterable<string>): string[] {
  const counts = new Map<string, number>();
  for (const v of values) {
    const batch = v.split("-")[0]!;
    counts.set(batch, (counts.get(batch) ?? 0) + 1);
  }
  return [...counts].filter(([, n]) => n !== BATCH).map(([b, n]) => `${b}: ${n} of ${BATCH}`);
}

describe("kills inside commits and torn WAL files", () => {
  it(`${ROUNDS} rounds: resolved batches survive a kill; a torn WAL loses exactly the transactions cut`, async () => {
    let torn = 0;
    let lostResolved = 0;
    let reused = 0;
    let tails = 0;
    let deepAsIs = 0;
    let deepDamaged = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-torn-"));
      const copyOf = mkdtempSync(join(tmpdir(), "plc2mqtt-torn-copy-"));
      const pristine = mkdtempSync(join(tmpdir(), "plc2mqtt-torn-pristine-"));
      try {
        const resolved = await writeAndKill(dir, 300 + Math.random() * 1500);
        for (const f of readdirSync(dir)) {
          copyFileSync(join(dir, f), join(copyOf, f));
          copyFileSync(join(dir, f), join(pristine, f));
        }

        // 1. killed inside a commit: all resolved batches, each batch whole
        const afterKill = await journaled(copyOf);
        const batches = new Set([...afterKill.keys()].map((v) => v.split("-")[0]!));
        expect(
          [...resolved].filter((b) => !batches.has(b)),
          "resolved but lost",
        ).toEqual([]);
        expect(partialBatches(afterKill.keys()), "batches in part").toEqual([]);

        // 2. the WAL cut: even rounds in the frames after the last commit frame (the torn tail
        // of a commit being written when the process died), odd rounds anywhere before it (a
        // disk that lost fsynced frames)
        const walFile = join(dir, `${DB}-wal`);
        const wal = existsSync(walFile) ? readFileSync(walFile) : Buffer.alloc(0);
        const ends = commitEnds(wal);
        const last = ends.at(-1) ?? 32;
        const tail = round % 2 === 0 && wal.length > last;
        if (wal.length <= 32 || (!tail && ends.length === 0)) continue; // nothing to tear
        const cut = tail
          ? last + Math.floor(Math.random() * (wal.length - last))
          : 32 + Math.floor(Math.random() * (last - 32));
        truncateSync(walFile, cut);
        torn++;
        const after = await journaled(dir);
        const aside = readdirSync(dir).filter((f) => f.includes("corrupt"));
        if (tail) {
          // a torn tail is no damage: the journal holds exactly what the kill left
          tails++;
          expect(aside, "a torn tail is not damage").toEqual([]);
          expect([...after].sort(), `tail cut at ${cut} of ${wal.length}`).toEqual(
            [...afterKill].sort(),
          );
        } else if (aside.length === 0) {
          // cut deeper: exactly the whole transactions before the cut, each batch whole or
          // absent (when a checkpoint had already copied later pages into the main file, the
          // mix is damage instead: the journal moves it aside and salvages, below)
          deepAsIs++;
          const kept = ends.filter((e) => e <= cut).at(-1) ?? 0;
          expect([...after].sort(), `cut at ${cut}, last whole commit ends at ${kept}`).toEqual(
            [...recovered(pristine, kept)].sort(),
          );
          expect(partialBatches(after.keys()), "batches in part after the cut").toEqual([]);
        } else deepDamaged++;
        const present = new Set([...after.keys()].map((v) => v.split("-")[0]!));
        lostResolved += [...resolved].filter((b) => !present.has(b)).length;
        // whatever the cut, the journal opens and goes on above every record it kept
        const journal = await openJournal(options(dir, { maxBytes: 256 * 1024 * 1024 }));
        const [next] = await journal.append([event()]);
        await journal.close();
        // and its hash chain verifies: a cut tail, or a salvaged segment after damage (issue 14)
        const chain = verifyJournal(dir);
        expect(chain.ok, `cut at ${cut}: ${chain.broken?.message}`).toBe(true);
        const max = [...after.values()].reduce((a, b) => (a > b ? a : b), 0n);
        expect(next!.sequence).toBeGreaterThan(max);
        // not asserted (losing fsynced frames is outside the crash model), reported: a
        // sequence (and so an id) that a lost, committed record had is handed out again
        const maxBefore = [...afterKill.values()].reduce((a, b) => (a > b ? a : b), 0n);
        if (next!.sequence <= maxBefore) reused++;
      } finally {
        rmSync(dir, { recursive: true, force: true });
        rmSync(copyOf, { recursive: true, force: true });
        rmSync(pristine, { recursive: true, force: true });
      }
    }
    process.stderr.write(
      `torn WAL: ${torn} of ${ROUNDS} rounds tore a WAL (${tails} torn tails, ${deepAsIs} deeper cuts opened as they were, ${deepDamaged} deeper cuts moved aside and salvaged); ${lostResolved} resolved batches lost to cuts into fsynced frames; ${reused} rounds handed out a lost record's sequence again\n`,
    );
  }, 1_800_000);
});
