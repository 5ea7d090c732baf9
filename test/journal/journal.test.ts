/**
 * The journal's core contract on real files: sequences and epochs across reopen, group
 * commit, the drain (unpublished / markPublished / waitForAppend), queries, and that close
 * leaves nothing running.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import { isGatewayError } from "../../src/lib/errors.ts";
import { expectHandlesBackTo, openHandles } from "../support/resources.ts";
import { captureLogger, event, events, options, tempDir } from "./helpers.ts";

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.remove());

describe("sequence and epoch", () => {
  it("assigns strictly increasing sequences that continue across close and reopen", async () => {
    const first = await openJournal(options(tmp.dir));
    const a = await first.append(events(3));
    const b = await first.append(events(2));
    await first.close();
    const second = await openJournal(options(tmp.dir));
    const c = await second.append(events(2));
    await second.close();
    const seqs = [...a, ...b, ...c].map((r) => r.sequence);
    expect(seqs).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n]);
    expect(second.epoch).toBe(first.epoch);
    expect(c[0]!.id).toBe(`${first.epoch}-00000000000000000006`);
  });

  it("never reuses a sequence after retention deleted every record", async () => {
    let now = 1_700_000_000_000;
    const clock = { now: () => now, retentionMs: 1000 };
    const first = await openJournal(options(tmp.dir, clock));
    const recs = await first.append(events(5, { time: now }));
    first.markPublished(recs.map((r) => r.sequence));
    await first.close();
    now += 10_000;
    const second = await openJournal(options(tmp.dir, clock));
    expect(second.query({})).toEqual([]);
    expect(second.stats().lastSequence).toBe(5n);
    const next = await second.append(events(1, { time: now }));
    expect(next[0]!.sequence).toBe(6n);
    await second.close();
  });

  it("starts a new epoch, and sequences above the old ones, when the file is deleted", async () => {
    const first = await openJournal(options(tmp.dir));
    await first.append(events(4));
    await first.close();
    rmSync(join(tmp.dir, "journal.sqlite"));
    const second = await openJournal(options(tmp.dir));
    expect(second.epoch).toMatch(/^[0-9a-f]{16}$/);
    expect(second.epoch).not.toBe(first.epoch);
    const [rec] = await second.append(events(1));
    expect(rec!.sequence).toBeGreaterThan(4n);
    expect(rec!.id.startsWith(`${second.epoch}-`)).toBe(true);
    await second.close();
  });
});

describe("group commit", () => {
  it("turns 1000 appends made in one tick into a few transactions", async () => {
    const capture = captureLogger();
    const journal = await openJournal(options(tmp.dir, { log: capture.log }));
    const before = capture.messages("journal group committed").length;
    const results = await Promise.all(
      Array.from({ length: 1000 }, () => journal.append([event()])),
    );
    const commits = capture.messages("journal group committed").length - before;
    expect(commits).toBeGreaterThanOrEqual(1);
    expect(commits).toBeLessThanOrEqual(3);
    expect(results.map((r) => r[0]!.sequence)).toEqual(
      Array.from({ length: 1000 }, (_, i) => BigInt(i + 1)),
    );
    await journal.close();
  });

  it("splits groups at commitMaxEvents but never splits a batch", async () => {
    const capture = captureLogger();
    const journal = await openJournal(options(tmp.dir, { log: capture.log, commitMaxEvents: 10 }));
    const results = await Promise.all([
      journal.append(events(6)),
      journal.append(events(6)),
      journal.append(events(6)),
    ]);
    const sizes = capture.messages("journal group committed").map((l) => l.events);
    expect(sizes.slice(-3)).toEqual([6, 6, 6]);
    expect(results.flat().map((r) => Number(r.sequence))).toEqual(
      Array.from({ length: 18 }, (_, i) => i + 1),
    );
    await journal.close();
  });

  it("commits a lone append without waiting for more appends", async () => {
    const journal = await openJournal(options(tmp.dir, { commitIntervalMs: 10_000 }));
    const [rec] = await journal.append([event()]);
    expect(rec!.sequence).toBe(1n);
    await journal.close();
  });

  it("commits queued appends at close", async () => {
    const journal = await openJournal(options(tmp.dir, { commitIntervalMs: 10_000 }));
    await journal.append([event()]); // the journal is no longer idle: the next one waits
    const pending = journal.append(events(3));
    await journal.close();
    expect((await pending).map((r) => r.sequence)).toEqual([2n, 3n, 4n]);
    await expect(journal.append([event()])).rejects.toSatisfy((e) =>
      isGatewayError(e, "JOURNAL_IO"),
    );
    await journal.close(); // idempotent
    const reopened = await openJournal(options(tmp.dir));
    expect(reopened.stats().lastSequence).toBe(4n);
    await reopened.close();
  });
});

describe("the drain", () => {
  it("returns unpublished records in order and forgets marked ones durably", async () => {
    const journal = await openJournal(options(tmp.dir));
    await journal.append(events(10));
    expect(journal.unpublished(0n, 100).map((r) => Number(r.sequence))).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
    journal.markPublished([1n, 2n, 3n, 4n, 5n]);
    expect(journal.unpublished(0n, 100).map((r) => Number(r.sequence))).toEqual([6, 7, 8, 9, 10]);
    expect(journal.unpublished(7n, 2).map((r) => Number(r.sequence))).toEqual([8, 9]);
    expect(journal.stats().pending).toBe(5);
    await journal.close();
    const reopened = await openJournal(options(tmp.dir));
    expect(reopened.unpublished(0n, 100).map((r) => Number(r.sequence))).toEqual([6, 7, 8, 9, 10]);
    const published = reopened.query({ limit: 5 });
    expect(published.every((r) => r.published === true)).toBe(true);
    expect(reopened.stats().pending).toBe(5);
    await reopened.close();
  });

  it("stores exactly what render produced", async () => {
    const journal = await openJournal(options(tmp.dir));
    const [rec] = await journal.append([event({ topicClass: "status", subject: "online" })]);
    const [stored] = journal.unpublished(0n, 1);
    expect(stored).toEqual(rec);
    expect(stored!.retain).toBe(true);
    expect(JSON.parse(stored!.payload)).toMatchObject({ id: rec!.id, subject: "online" });
    await journal.close();
  });

  it("wakes a waiter on the next commit and rejects it when aborted", async () => {
    const journal = await openJournal(options(tmp.dir));
    const controller = new AbortController();
    const woken = journal.waitForAppend(0n, controller.signal);
    await journal.append([event()]);
    await woken;
    await journal.waitForAppend(0n, controller.signal); // already there: resolves at once
    const aborted = journal.waitForAppend(1n, controller.signal);
    controller.abort();
    await expect(aborted).rejects.toSatisfy((e) => isGatewayError(e, "ABORTED"));
    const atClose = journal.waitForAppend(5n, new AbortController().signal);
    await journal.close();
    await expect(atClose).rejects.toSatisfy((e) => isGatewayError(e, "ABORTED"));
  });
});

describe("queries", () => {
  it("filters by device, subject, type and time, in either order, with a limit", async () => {
    const journal = await openJournal(options(tmp.dir));
    await journal.append([
      event({ device: "a", subject: "x", time: 100 }),
      event({ device: "a", subject: "y", time: 200 }),
      event({ device: "b", subject: "x", time: 300, type: "batch.completed" }),
      event({ device: "a", subject: "x", time: 400 }),
    ]);
    const seqs = (q: Parameters<typeof journal.query>[0]) =>
      journal.query(q).map((r) => Number(r.sequence));
    expect(seqs({ device: "a" })).toEqual([1, 2, 4]);
    expect(seqs({ device: "a", subject: "x" })).toEqual([1, 4]);
    expect(seqs({ subject: "x" })).toEqual([1, 3, 4]);
    expect(seqs({ type: "batch.completed" })).toEqual([3]);
    expect(seqs({ from: 200, to: 300 })).toEqual([2, 3]);
    expect(seqs({ order: "desc", limit: 2 })).toEqual([4, 3]);
    expect(seqs({ device: "a", from: 150, order: "desc" })).toEqual([4, 2]);
    await journal.close();
  });
});

describe("resources", () => {
  it("leaves no timers or handles after close", async () => {
    const baseline = openHandles();
    const journal = await openJournal(options(tmp.dir));
    await journal.append(events(5));
    journal.markPublished([1n]); // arms the mark timer
    void journal.append(events(1)); // queued behind the commit interval
    await journal.close();
    await expectHandlesBackTo(baseline);
  });
});
