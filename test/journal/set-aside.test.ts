/**
 * Journal.setAside (journal/set-aside.ts): a record the broker refused for good is done for the
 * drain at once, kept with its reason and time, durable at the next commit like a publish mark,
 * listed by query({ setAside }) and by the read-only reader (never as published), counted in
 * stats(); clearSetAside (replay --set-aside, another connection) makes it published; a
 * journal of schema version 1 gets the table when opened.
 */
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import { openJournalReader } from "../../src/journal/reader.ts";
import { clearSetAside } from "../../src/journal/set-aside.ts";
import { journalPath } from "../../src/journal/store.ts";
import type { Journal } from "../../src/journal/types.ts";
import { events, options, tempDir } from "./helpers.ts";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function open(dir: string, overrides: Parameters<typeof options>[1] = {}): Promise<Journal> {
  const journal = await openJournal(options(dir, { commitIntervalMs: 5, ...overrides }));
  cleanup.push(() => journal.close());
  return journal;
}

function folder(): string {
  const tmp = tempDir();
  cleanup.push(tmp.remove);
  return tmp.dir;
}

const REASON = "the broker refused it: Not authorized (reason code 0x87)";

describe("Journal.setAside", () => {
  it("takes the record out of the drain at once, keeps it with its reason, durably", async () => {
    const dir = folder();
    let journal = await open(dir);
    const records = await journal.append(events(4));
    const [, second, third] = records;
    const before = Date.now();
    journal.setAside(second!.sequence, REASON);
    expect(journal.unpublished(0n, 10).map((r) => r.sequence)).toEqual(
      records.filter((r) => r !== second).map((r) => r.sequence),
    );
    expect(journal.stats().setAside).toBe(1);
    expect(journal.stats().pending).toBe(3);
    journal.markPublished([third!.sequence]);
    await journal.close();

    journal = await open(dir);
    expect(journal.unpublished(0n, 10).map((r) => r.sequence)).toEqual([
      records[0]!.sequence,
      records[3]!.sequence,
    ]);
    expect(journal.stats()).toMatchObject({ setAside: 1, pending: 2 });
    const [kept] = journal.query({ setAside: true });
    expect(kept!.sequence).toBe(second!.sequence);
    expect(kept!.payload).toBe(second!.payload);
    expect(kept!.setAside!.reason).toBe(REASON);
    expect(kept!.setAside!.at).toBeGreaterThanOrEqual(before);
    expect(kept!.published).toBeUndefined();
    // every query says so; other records carry no mark
    const all = journal.query({});
    expect(all.find((r) => r.sequence === second!.sequence)?.setAside?.reason).toBe(REASON);
    expect(all.filter((r) => r.setAside !== undefined)).toHaveLength(1);
    expect(journal.query({ setAside: true, device: "no-such-device" })).toEqual([]);
  });

  it("leaves a published record as it is", async () => {
    const journal = await open(folder());
    const [record] = await journal.append(events(1));
    journal.markPublished([record!.sequence]);
    await new Promise((r) => setTimeout(r, 30)); // the mark is committed
    journal.setAside(record!.sequence, REASON);
    await new Promise((r) => setTimeout(r, 30));
    expect(journal.query({ setAside: true })).toEqual([]);
    expect(journal.stats().setAside).toBe(0);
    expect(journal.query({})[0]!.published).toBe(true);
  });

  it("is listed by the reader as set aside, never as published or pending", async () => {
    const dir = folder();
    const journal = await open(dir);
    const [a, b, c] = await journal.append(events(3));
    journal.setAside(b!.sequence, REASON);
    journal.markPublished([a!.sequence]);
    await new Promise((r) => setTimeout(r, 30));
    const reader = openJournalReader(dir);
    cleanup.push(() => reader.close());
    expect(reader.query({ status: "published" }).map((r) => r.sequence)).toEqual([a!.sequence]);
    expect(reader.query({ status: "pending" }).map((r) => r.sequence)).toEqual([c!.sequence]);
    const listed = reader.query({ setAside: true });
    expect(listed.map((r) => [r.sequence, r.setAside?.reason])).toEqual([[b!.sequence, REASON]]);
    expect(reader.count({ setAside: true })).toBe(1);
    expect(reader.count({ status: "published" })).toBe(1);
    expect([...reader.scan({ setAside: true })].map((r) => r.sequence)).toEqual([b!.sequence]);
  });

  it("is cleared by clearSetAside beside the running journal: published from then on", async () => {
    const dir = folder();
    const journal = await open(dir);
    const [a, b] = await journal.append(events(2));
    journal.setAside(a!.sequence, REASON);
    journal.setAside(b!.sequence, REASON);
    await new Promise((r) => setTimeout(r, 30));
    const at = Date.now();
    expect(clearSetAside(journalPath(dir), [a!.sequence, 999n], at)).toBe(1);
    expect(journal.stats().setAside).toBe(1);
    expect(journal.query({ setAside: true }).map((r) => r.sequence)).toEqual([b!.sequence]);
    const cleared = journal.query({}).find((r) => r.sequence === a!.sequence)!;
    expect(cleared.setAside).toBeUndefined();
    expect(cleared.published).toBe(true);
    expect(journal.unpublished(0n, 10)).toEqual([]);
  });

  it("rows of records gone from the journal are not counted, and are deleted by retention", async () => {
    const dir = folder();
    let journal = await open(dir);
    const [a] = await journal.append(events(2));
    journal.setAside(a!.sequence, REASON);
    await journal.close();
    // the record leaves (as retention or the size policy would delete it): its row is an orphan
    const db = new DatabaseSync(journalPath(dir));
    db.prepare("DELETE FROM records WHERE sequence = ?").run(a!.sequence);
    db.close();
    journal = await open(dir); // retention runs at open
    expect(journal.stats().setAside).toBe(0);
    const check = new DatabaseSync(journalPath(dir), { readOnly: true });
    expect(check.prepare("SELECT count(*) AS n FROM set_aside").get()?.n).toBe(0);
    check.close();
  });
});

describe("a journal of schema version 1", () => {
  it("gets the set_aside table when opened, its records intact", async () => {
    const dir = folder();
    let journal = await open(dir);
    const records = await journal.append(events(3));
    await journal.close();
    const db = new DatabaseSync(journalPath(dir));
    db.exec("DROP TABLE set_aside; PRAGMA user_version = 1;");
    db.close();
    // the reader copes with a journal that has no table yet
    const reader = openJournalReader(dir);
    expect(reader.query({ setAside: true })).toEqual([]);
    expect(reader.count({ setAside: true })).toBe(0);
    expect(reader.query({ status: "pending" })).toHaveLength(3);
    reader.close();

    journal = await open(dir);
    expect(journal.unpublished(0n, 10).map((r) => r.sequence)).toEqual(
      records.map((r) => r.sequence),
    );
    journal.setAside(records[0]!.sequence, REASON);
    await journal.close();
    const after = new DatabaseSync(journalPath(dir), { readOnly: true });
    expect(after.prepare("PRAGMA user_version").get()?.user_version).toBe(3);
    expect(after.prepare("SELECT reason FROM set_aside").all()).toEqual([
      expect.objectContaining({ reason: REASON }),
    ]);
    after.close();
  });
});
