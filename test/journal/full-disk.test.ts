/**
 * A full file system is the journal's size limit (PRODUCT.md guarantee 5, issue 12.6), on a
 * real one: a small tmpfs, journal.max_bytes far above it. The journal runs into the disk's
 * limit by itself (the budget it measures), then another writer takes every byte left (a
 * filler file: the journal's next writes meet ENOSPC for real). Through all of it appends keep
 * resolving: published records are freed first, then the oldest pending ones are dropped,
 * counted and announced by an overflow notice, and no sequence is used twice. A journal closed
 * on such a disk opens again on it, with every byte taken, and appends. At start the journal
 * warns, once, when max_bytes is larger than its file system holds.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EVENT_TYPES } from "../../src/events/types.ts";
import { openJournal } from "../../src/journal/index.ts";
import { effectiveBudget } from "../../src/journal/size-policy.ts";
import type { Journal, JournalRecord } from "../../src/journal/types.ts";
import { mountTmpfs, type Tmpfs } from "../chaos/tmpfs.ts";
import { captureLogger, events, options } from "./helpers.ts";

const MiB = 1024 * 1024;
/** Far above the file system: the disk, not max_bytes, is the limit. */
const MAX_BYTES = 64 * MiB;
const RELEASED = "journal: the file system is full: reserve released, making room";
const SMALL_DISK = /^journal: max_bytes is larger than its file system holds/;

/** About 550-byte records. */
const batch = (n = 50) => events(n, { data: { value: "x".repeat(400), quality: "good" } });

describe("a full file system under the journal (real tmpfs)", () => {
  let fs: Tmpfs | undefined;
  let journal: Journal | undefined;
  afterEach(async () => {
    await journal?.close().catch(() => {});
    journal = undefined;
    fs?.unmount();
    fs = undefined;
  });

  /** Appends batches until `done`; every append must resolve. Collects the sequences. */
  async function appendUntil(
    j: Journal,
    done: (round: number) => boolean,
    publish: boolean,
    appended: bigint[] = [],
  ): Promise<void> {
    for (let round = 0; round < 2000 && !done(round); round++) {
      let records: JournalRecord[];
      try {
        records = await j.append(batch());
      } catch (err) {
        throw new Error(`append ${round} refused (${fs?.free()} bytes free): ${String(err)}`);
      }
      appended.push(...records.map((r) => r.sequence));
      if (publish) j.markPublished(records.map((r) => r.sequence));
    }
  }

  it("keeps appending: published records go first, then the oldest pending, announced", async () => {
    fs = mountTmpfs(3 * MiB);
    const capture = captureLogger();
    const j = await openJournal(
      options(`${fs.dir}/data`, { maxBytes: MAX_BYTES, commitIntervalMs: 5, log: capture.log }),
    );
    journal = j;
    const oldest = () => j.query({ limit: 1 })[0]?.sequence ?? 1n;
    const appended: bigint[] = [];

    // 1. published history until the disk's limit made the size policy delete some of it
    await appendUntil(j, () => oldest() > 1n, true, appended);
    expect(j.stats().dropped).toBe(0);

    // 2. another writer takes every byte left: the next commits meet ENOSPC and go through
    fs.fill(0);
    expect(fs.free()).toBe(0);
    await appendUntil(j, (round) => round >= 20, true, appended);
    expect(capture.messages(RELEASED).length, "ENOSPC was never met").toBeGreaterThan(0);
    expect(j.stats().dropped).toBe(0); // only published records had to go

    // 3. nothing is published any more (the broker is away): the oldest pending go, announced
    const published = appended.length;
    await appendUntil(j, () => j.stats().dropped > 0, false, appended);
    let all = j.query({ limit: 100_000 });
    expect(all.filter((r) => r.published === true)).toEqual([]); // published went first
    const notices = all.filter((r) => r.type === EVENT_TYPES.journalOverflow);
    expect(notices).toHaveLength(1);
    const notice = JSON.parse(notices[0]!.payload) as { data: Record<string, unknown> };
    expect(notice.data.dropped).toBe(j.stats().dropped);
    expect(notice.data.oldest_kept_sequence).toBe(String(all[0]!.sequence).padStart(20, "0"));
    expect(j.unpublished(0n, 100_000).map((r) => r.sequence)).toContain(notices[0]!.sequence);

    // 4. the disk is taken again while only pending records are left: appends still resolve
    expect(existsSync(`${fs.dir}/data/journal.reserve`), "the reserve was not written again").toBe(
      true,
    );
    const released = capture.messages(RELEASED).length;
    fs.fill(0);
    const dropped = j.stats().dropped;
    await appendUntil(j, (round) => round >= 20, false, appended);
    expect(capture.messages(RELEASED).length).toBeGreaterThan(released);
    expect(j.stats().dropped).toBeGreaterThan(dropped);

    // no sequence used twice, none out of order; of the events never published, only the
    // oldest are gone, and no more than the journal counted as dropped
    for (let i = 1; i < appended.length; i++) expect(appended[i]! > appended[i - 1]!).toBe(true);
    all = j.query({ limit: 100_000 });
    const kept = new Set(all.map((r) => r.sequence));
    const lost = appended.slice(published).filter((s) => !kept.has(s));
    expect(lost.length).toBeGreaterThan(0);
    expect(lost.length).toBeLessThanOrEqual(j.stats().dropped);
    expect(lost.every((s) => s < all[0]!.sequence)).toBe(true);
    expect(capture.messages("journal commit failed")).toEqual([]);
  }, 30_000);

  it("opens and appends on a file system that is already full", async () => {
    fs = mountTmpfs(3 * MiB);
    const dir = `${fs.dir}/data`;
    const first = await openJournal(options(dir, { maxBytes: MAX_BYTES, commitIntervalMs: 5 }));
    journal = first;
    // a published history, then a few pending events (the broker went away)
    for (let i = 0; i < 40; i++) {
      const records = await first.append(batch());
      first.markPublished(records.map((r) => r.sequence));
    }
    const pending = (await first.append(batch(100))).map((r) => r.sequence);
    await first.close();
    journal = undefined;

    fs.fill(0);
    expect(fs.free()).toBe(0);
    const capture = captureLogger();
    const j = await openJournal(
      options(dir, { maxBytes: MAX_BYTES, commitIntervalMs: 5, log: capture.log }),
    );
    journal = j;
    expect(capture.messages(RELEASED).length, "the open never met ENOSPC").toBeGreaterThan(0);
    // the pending events are all there (only published ones made the room)
    expect(j.unpublished(0n, 1000).map((r) => r.sequence)).toEqual(pending);
    const next = await j.append(batch(20));
    expect(next[0]!.sequence).toBe(pending.at(-1)! + 1n);
    expect(j.stats().dropped).toBe(0);
    await j.close();
    journal = undefined;
  }, 30_000);

  it("shrinks its file to the budget when another writer takes room the file holds", async () => {
    fs = mountTmpfs(16 * MiB);
    const dir = `${fs.dir}/data`;
    const j = await openJournal(options(dir, { maxBytes: MAX_BYTES, commitIntervalMs: 5 }));
    journal = j;
    const fileBytes = () => statSync(join(dir, "journal.sqlite")).size;
    // a published history of 6 MiB: the file holds it
    await appendUntil(j, () => fileBytes() >= 6 * MiB, true);
    const before = fileBytes();
    // Another writer leaves 1.5 MB free: the budget the journal measures (its files and the
    // free space, disk-space.ts) falls below its file, with room left for the WAL. A commit
    // must then give the disk back (full-disk.ts afterCommit), not sit on the freed pages.
    fs.fill(1_500_000);
    let own = 0;
    for (const name of readdirSync(dir)) own += statSync(join(dir, name)).blocks * 512;
    const { maxPages, pageSize } = effectiveBudget(MAX_BYTES, own + fs.free()).budget;
    expect(before, "the filler left the file within its budget").toBeGreaterThan(
      maxPages * pageSize,
    );
    // one event at a time: far too few WAL frames to run the disk out (which also makes room)
    for (let i = 0; i < 100 && fileBytes() > maxPages * pageSize; i++) {
      const records = await j.append(events(1));
      j.markPublished(records.map((r) => r.sequence));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(fileBytes()).toBeLessThanOrEqual(maxPages * pageSize);
    expect(j.stats().dropped).toBe(0);
  }, 30_000);

  /** The warnings a journal with `maxBytes` on a 4 MiB tmpfs logs at start (and two appends). */
  async function smallDiskWarnings(maxBytes: number) {
    fs = mountTmpfs(4 * MiB);
    const capture = captureLogger();
    journal = await openJournal(
      options(`${fs.dir}/data`, { maxBytes, commitIntervalMs: 5, log: capture.log }),
    );
    await journal.append(events(20));
    await journal.append(events(20));
    return capture.lines.filter((l) => SMALL_DISK.test(String(l.msg)));
  }

  it("warns once at start when max_bytes is larger than the disk (issue 14)", async () => {
    const warned = await smallDiskWarnings(1024 * MiB);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, max_bytes: 1024 * MiB });
    expect(Number(warned[0]!.capacity)).toBeLessThanOrEqual(4 * MiB);
  });

  it("says nothing of the disk when max_bytes fits", async () => {
    expect(await smallDiskWarnings(2 * MiB)).toEqual([]);
  });
});
