/**
 * Retention deletes only published records past the retention; the size policy keeps the
 * journal's files (main + WAL + the full-disk reserve) under max_bytes, drops published
 * records before pending ones, and reports every pending event it drops in an overflow notice
 * committed with the drop.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EVENT_TYPES } from "../../src/events/types.ts";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { isGatewayError } from "../../src/lib/errors.ts";
import { event, events, options, tempDir } from "./helpers.ts";

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.remove());

function onDisk(dir: string): number {
  const size = (name: string) => {
    try {
      return statSync(join(dir, name)).size;
    } catch {
      return 0;
    }
  };
  return size("journal.sqlite") + size("journal.sqlite-wal") + size("journal.reserve");
}

describe("retention", () => {
  it("deletes published records older than the retention, at open, and nothing else", async () => {
    let now = 1_800_000_000_000;
    const opts = options(tmp.dir, { now: () => now, retentionMs: 60_000 });
    const journal = await openJournal(opts);
    const old = await journal.append(events(4, { time: now - 120_000 }));
    const fresh = await journal.append(events(2, { time: now - 1000 }));
    journal.markPublished([old[0]!.sequence, old[1]!.sequence, fresh[0]!.sequence]);
    await journal.close();
    now += 30_000;
    const reopened = await openJournal(opts);
    // old[0..1]: published and old: gone. old[2..3]: old but pending: kept. fresh: too young.
    expect(reopened.query({}).map((r) => r.sequence)).toEqual([
      old[2]!.sequence,
      old[3]!.sequence,
      fresh[0]!.sequence,
      fresh[1]!.sequence,
    ]);
    await reopened.close();
  });
});

describe("max_bytes", () => {
  const maxBytes = 2 * 1024 * 1024;

  async function appendUntil(
    journal: Journal,
    done: () => boolean,
    publish: boolean,
    peak: { bytes: number },
  ): Promise<void> {
    for (let round = 0; round < 400 && !done(); round++) {
      const batches = await Promise.all(
        Array.from({ length: 10 }, () =>
          journal.append(events(10, { data: { value: "x".repeat(400) } })),
        ),
      );
      if (publish) journal.markPublished(batches.flat().map((r) => r.sequence));
      peak.bytes = Math.max(peak.bytes, onDisk(tmp.dir));
    }
  }

  it("stays under max_bytes, drops published first, then the oldest pending with a notice", async () => {
    const journal = await openJournal(options(tmp.dir, { maxBytes, commitIntervalMs: 5 }));
    const peak = { bytes: 0 };
    // Phase 1: published history until the size policy had to delete some of it.
    const oldest = () => journal.query({ limit: 1 })[0]?.sequence ?? 1n;
    await appendUntil(journal, () => oldest() > 1n, true, peak);
    expect(journal.stats().dropped).toBe(0);
    const publishedBefore = journal.query({ limit: 100_000 }).filter((r) => r.published);
    expect(publishedBefore.length).toBeGreaterThan(100);
    // Phase 2: pending events (broker down) until the first drop.
    await appendUntil(journal, () => journal.stats().dropped > 0, false, peak);
    const dropped = journal.stats().dropped;
    expect(dropped).toBeGreaterThan(0);
    const all = journal.query({ limit: 100_000 });
    expect(all.filter((r) => r.published === true)).toEqual([]); // published went first
    const notices = all.filter((r) => r.type === EVENT_TYPES.journalOverflow);
    expect(notices).toHaveLength(1);
    const notice = JSON.parse(notices[0]!.payload) as { data: Record<string, unknown> };
    expect(notice.data.dropped).toBe(dropped);
    expect(notice.data.oldest_kept_sequence).toBe(String(all[0]!.sequence).padStart(20, "0"));
    expect(notices[0]!.device).toBe("gw-1");
    expect(notices[0]!.topic).toBe("plant/gw-1/status/journal");
    // The notice is pending like any event, so the publisher will send it.
    expect(
      journal.unpublished(0n, 100_000).some((r) => r.type === EVENT_TYPES.journalOverflow),
    ).toBe(true);
    // Phase 3: keep going; the bound holds and the count grows.
    await appendUntil(journal, () => journal.stats().dropped > dropped * 3, false, peak);
    expect(peak.bytes).toBeLessThanOrEqual(maxBytes);
    expect(journal.stats().bytes).toBeLessThanOrEqual(maxBytes);
    const total = journal.stats().dropped;
    await journal.close();
    expect(onDisk(tmp.dir)).toBeLessThanOrEqual(maxBytes);
    const reopened = await openJournal(options(tmp.dir, { maxBytes }));
    expect(reopened.stats().dropped).toBe(total); // persisted
    await reopened.close();
  });

  it("shrinks a journal opened with a smaller max_bytes", async () => {
    const big = await openJournal(options(tmp.dir, { maxBytes: 8 * maxBytes }));
    for (let i = 0; i < 20; i++) {
      const recs = await big.append(events(200, { data: { value: "y".repeat(400) } }));
      big.markPublished(recs.map((r) => r.sequence));
    }
    await big.close();
    expect(onDisk(tmp.dir)).toBeGreaterThan(maxBytes);
    const small = await openJournal(options(tmp.dir, { maxBytes }));
    expect(onDisk(tmp.dir)).toBeLessThanOrEqual(maxBytes);
    expect(small.stats().dropped).toBe(0); // only published records had to go
    await small.append([event()]);
    await small.close();
  });

  it("rejects a batch larger than the journal, keeps nothing of it, and stays usable", async () => {
    const journal = await openJournal(options(tmp.dir, { maxBytes }));
    await journal.append(events(2));
    const huge = event({ data: { value: "z".repeat(3 * 1024 * 1024) } });
    const err = await journal.append([event(), huge]).catch((e: unknown) => e);
    expect(isGatewayError(err, "JOURNAL_BATCH")).toBe(true);
    expect((err as Error).message).toContain(tmp.dir);
    const [next] = await journal.append([event()]);
    expect(next!.sequence).toBe(3n);
    expect(journal.query({}).map((r) => r.sequence)).toEqual([1n, 2n, 3n]);
    await journal.close();
  });
});
