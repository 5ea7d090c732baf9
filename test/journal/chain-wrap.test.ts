/**
 * Retention that holds (issue 14): a journal of 2 MiB takes continuous appends worth more than
 * five times its size while the records are published as they go (one batch behind). The size
 * policy frees published records from the front in small steps and the inserts reuse the
 * space: after every append the journal (database, WAL, reserve) stays within max_bytes and the
 * whole folder within max_bytes plus the documented margin (DISK_SLACK: the -shm file,
 * journal.seq); nothing pending is dropped; `verify` passes beside the running writer and at
 * the end, from the oldest kept record, which links to where pruning left off.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { type Journal, openJournal, verifyJournal } from "../../src/journal/index.ts";
import { DISK_SLACK } from "../../src/journal/size-policy.ts";
import { events, options, tempDir } from "./helpers.ts";

const MAX_BYTES = 2 * 1024 * 1024;

let tmp: ReturnType<typeof tempDir> | undefined;
let journal: Journal | undefined;

afterEach(async () => {
  await journal?.close();
  journal = undefined;
  tmp?.remove();
});

function folderBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

it("wraps max_bytes several times under continuous appends, in bounds, the chain whole", async () => {
  tmp = tempDir();
  journal = await openJournal(
    options(tmp.dir, { maxBytes: MAX_BYTES, commitIntervalMs: 1, integrityCheck: false }),
  );
  let previous: bigint[] = [];
  let appendedBytes = 0;
  let largestFolder = 0;
  let midway: ReturnType<typeof verifyJournal> | undefined;
  for (let round = 0; appendedBytes < 5.5 * MAX_BYTES; round++) {
    const records = await journal.append(events(50));
    appendedBytes += records.reduce((sum, r) => sum + r.payload.length, 0);
    journal.markPublished(previous); // the publisher, one batch behind
    previous = records.map((r) => r.sequence);
    expect(journal.stats().bytes).toBeLessThanOrEqual(MAX_BYTES);
    largestFolder = Math.max(largestFolder, folderBytes(tmp.dir));
    expect(folderBytes(tmp.dir)).toBeLessThanOrEqual(MAX_BYTES + DISK_SLACK);
    if (round === 150) midway = verifyJournal(tmp.dir); // a second reader beside the writer
  }
  expect(midway).toMatchObject({ ok: true });
  expect(midway?.prunedThrough).toBeDefined();
  const stats = journal.stats();
  expect(stats.dropped).toBe(0); // only published records made room
  await journal.close();
  journal = undefined;
  const result = verifyJournal(tmp.dir);
  expect(result).toMatchObject({ ok: true, last: stats.lastSequence });
  expect(result.prunedThrough?.sequence).toBe(result.first! - 1n);
  // the front went: far fewer records kept than appended
  expect(result.checked).toBeLessThan(Number(stats.lastSequence) / 4);
  expect(largestFolder).toBeGreaterThan(MAX_BYTES / 2); // the space was used, then reused
}, 60_000);
