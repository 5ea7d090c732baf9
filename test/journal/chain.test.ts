/**
 * The journal's hash chain (issue 14) on real files: the hashes the group commits write are
 * SHA-256(link || sequence (8 bytes BE) || payload), recomputed here independently; `verify`
 * passes on an intact journal, after retention, after a size-policy drop, after a salvage,
 * after a replace() and on a migrated user_version 2 journal; and it names by sequence a record
 * modified, deleted, reordered or inserted with SQLite directly, and an anchor that does not
 * match.
 */
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { crc32 } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import type { Journal } from "../../src/journal/index.ts";
import { openJournal, verifyJournal } from "../../src/journal/index.ts";
import { checkFailedPath, journalPath } from "../../src/journal/store.ts";
import { event, events, options, tempDir } from "./helpers.ts";

let tmp: ReturnType<typeof tempDir>;
let journal: Journal | undefined;

afterEach(async () => {
  await journal?.close();
  journal = undefined;
  tmp?.remove();
});

/** Runs `work` on the journal file with a plain SQLite connection (as a tamperer would). */
function withDb<T>(dir: string, work: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(journalPath(dir));
  try {
    return work(db);
  } finally {
    db.close();
  }
}

function rows(dir: string): { sequence: bigint; payload: string; hash: Uint8Array | null }[] {
  return withDb(dir, (db) => {
    const stmt = db.prepare("SELECT sequence, payload, hash FROM records ORDER BY sequence");
    stmt.setReadBigInts(true);
    return stmt.all().map((r) => ({
      sequence: r.sequence as bigint,
      payload: String(r.payload),
      hash: r.hash instanceof Uint8Array ? r.hash : null,
    }));
  });
}

/** The chain hash, computed here from the formula (not with the code under test). */
function sha(link: Uint8Array, sequence: bigint, payload: string): Buffer {
  const seq = Buffer.alloc(8);
  seq.writeBigUInt64BE(sequence);
  return createHash("sha256").update(link).update(seq).update(Buffer.from(payload)).digest();
}

/** A journal of `n` events in group commits of `group`, closed. */
async function seeded(n: number, group = 25): Promise<bigint[]> {
  const j = await openJournal(options(tmp.dir, { integrityCheck: false }));
  const out: bigint[] = [];
  for (let i = 0; i < n; i += group) {
    for (const r of await j.append(events(Math.min(group, n - i)))) out.push(r.sequence);
  }
  await j.close();
  return out;
}

function setPayload(db: DatabaseSync, sequence: bigint, payload: string): void {
  db.prepare("UPDATE records SET payload = ?, crc = ? WHERE sequence = ?").run(
    payload,
    crc32(payload),
    sequence,
  );
}

/** Swaps the payloads of two records (crc kept right, hashes left as they were). */
function swapPayloads(db: DatabaseSync, a: bigint, b: bigint): void {
  const get = (s: bigint) =>
    String(db.prepare("SELECT payload FROM records WHERE sequence = ?").get(s)?.payload);
  const [pa, pb] = [get(a), get(b)];
  setPayload(db, a, pb);
  setPayload(db, b, pa);
}

describe("the hash chain", () => {
  it("links every record to the one before, as the formula says, and verifies", async () => {
    tmp = tempDir();
    const seqs = await seeded(100);
    const stored = rows(tmp.dir);
    let link: Uint8Array = Buffer.alloc(32);
    for (const r of stored) {
      const want = sha(link, r.sequence, r.payload);
      expect(Buffer.from(r.hash!).toString("hex")).toBe(want.toString("hex"));
      link = want;
    }
    const result = verifyJournal(tmp.dir);
    expect(result).toMatchObject({
      ok: true,
      checked: 100,
      first: seqs[0],
      last: seqs[99],
      headHash: Buffer.from(link).toString("hex"),
    });
    expect(result.segments.map((s) => s.kind)).toEqual(["new"]);
  });

  it("links rows inserted many to a statement as it links them one by one, in append order", async () => {
    // one group commit of batches of 10, 40, 7, 64 and 1 events: the rows go in 32 to an
    // INSERT while 32 are left (across batches), the rest one at a time
    tmp = tempDir();
    journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
    const sizes = [10, 40, 7, 64, 1];
    const batches = sizes.map((n, b) =>
      Array.from({ length: n }, (_, i) => event({ subject: `b${b}-e${i}` })),
    );
    const appended = await Promise.all(batches.map((batch) => journal!.append(batch)));
    const stored = rows(tmp.dir);
    expect(stored).toHaveLength(122);
    const subjects = withDb(tmp.dir, (db) =>
      db
        .prepare("SELECT subject FROM records ORDER BY sequence")
        .all()
        .map((r) => r.subject),
    );
    expect(subjects).toEqual(batches.flat().map((e) => e.subject));
    expect(stored.map((r) => r.sequence)).toEqual(appended.flat().map((r) => r.sequence));
    let link: Uint8Array = Buffer.alloc(32);
    for (const r of stored) {
      const want = sha(link, r.sequence, r.payload);
      expect(Buffer.from(r.hash!).toString("hex"), `sequence ${r.sequence}`).toBe(
        want.toString("hex"),
      );
      link = want;
    }
    await journal.close();
    journal = undefined;
    expect(verifyJournal(tmp.dir)).toMatchObject({ ok: true, checked: 122 });
  });

  it("stores each payload's crc32 of its UTF-8, taken from the bytes it hashed", async () => {
    // the commit encodes a payload once for its hash and its crc: multi-byte text, emoji and a
    // lone surrogate (JSON escapes it) must give the crc of the string as zlib encodes it
    tmp = tempDir();
    const texts = [
      "plain",
      "Grüße aus Köln",
      "温度 ✓",
      "🔧 Ölpumpe 🚒",
      "\ud800 alone",
      "x".repeat(5000),
    ];
    journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
    await journal.append(texts.map((text) => event({ data: { value: text, quality: "good" } })));
    await journal.close();
    journal = undefined;
    const stored = withDb(tmp.dir, (db) =>
      db.prepare("SELECT payload, crc FROM records ORDER BY sequence").all(),
    );
    expect(stored).toHaveLength(texts.length);
    for (const row of stored) expect(row.crc).toBe(crc32(String(row.payload)));
    journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
    // read back from the file (a reopened journal has no tail): a crc off is a corrupt row
    const back = journal.unpublished(0n, 100);
    expect(back.map((r) => JSON.parse(r.payload).data.value)).toEqual(texts);
  });

  it("names a modified record by its sequence", async () => {
    tmp = tempDir();
    const seqs = await seeded(60);
    const target = seqs[30]!;
    withDb(tmp.dir, (db) => {
      const payload = String(
        db.prepare("SELECT payload FROM records WHERE sequence = ?").get(target)?.payload,
      );
      setPayload(db, target, payload.replace(/"value":\d+/, '"value":999999'));
    });
    const result = verifyJournal(tmp.dir);
    expect(result.ok).toBe(false);
    expect(result.broken).toMatchObject({ sequence: target, kind: "modified" });
    expect(result.checked).toBe(30);
  });

  it("names the record after a deleted one, and the missing sequence", async () => {
    tmp = tempDir();
    const seqs = await seeded(60);
    withDb(tmp.dir, (db) => db.prepare("DELETE FROM records WHERE sequence = ?").run(seqs[20]!));
    const result = verifyJournal(tmp.dir);
    expect(result.broken).toMatchObject({ sequence: seqs[21], kind: "deleted" });
    expect(result.broken?.message).toContain(`sequence ${seqs[20]} is missing`);
  });

  it("names a reordered pair: payloads swapped, or sequences swapped", async () => {
    tmp = tempDir();
    const seqs = await seeded(60);
    const [a, b] = [seqs[10]!, seqs[11]!];
    withDb(tmp.dir, (db) => swapPayloads(db, a, b));
    expect(verifyJournal(tmp.dir).broken).toMatchObject({ sequence: a, kind: "reordered" });

    // swap back, then swap whole rows' sequences (hash and all move with them)
    const [c, d] = [seqs[40]!, seqs[41]!];
    withDb(tmp.dir, (db) => {
      swapPayloads(db, a, b);
      db.prepare("UPDATE records SET sequence = -1 WHERE sequence = ?").run(c);
      db.prepare("UPDATE records SET sequence = ? WHERE sequence = ?").run(c, d);
      db.prepare("UPDATE records SET sequence = ? WHERE sequence = -1").run(d);
    });
    expect(verifyJournal(tmp.dir).broken).toMatchObject({ sequence: c, kind: "reordered" });
  });

  it("names a record inserted afterwards at the end", async () => {
    tmp = tempDir();
    const seqs = await seeded(30);
    const last = seqs.at(-1)!;
    withDb(tmp.dir, (db) => {
      const row = db.prepare("SELECT * FROM records WHERE sequence = ?").get(last)!;
      const payload = String(row.payload).replace(
        /"sequence":"\d+"/,
        `"sequence":"${String(last + 1n).padStart(20, "0")}"`,
      );
      db.prepare(
        "INSERT INTO records(sequence, id, type, device, subject, time, topic, retain, payload, crc, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ).run(
        last + 1n,
        `${String(row.id)}x`,
        String(row.type),
        String(row.device),
        String(row.subject),
        Number(row.time),
        String(row.topic),
        Number(row.retain),
        payload,
        crc32(payload),
        randomBytes(32),
      );
    });
    expect(verifyJournal(tmp.dir).broken).toMatchObject({ sequence: last + 1n, kind: "inserted" });
  });

  it("checks an anchor: the right hash passes, a wrong one fails, a changed history fails", async () => {
    tmp = tempDir();
    const seqs = await seeded(40);
    const at = seqs[25]!;
    const hash = Buffer.from(rows(tmp.dir).find((r) => r.sequence === at)!.hash!).toString("hex");
    expect(verifyJournal(tmp.dir, { anchor: { sequence: at, hash } })).toMatchObject({
      ok: true,
      anchorOk: true,
      first: at,
      checked: 15,
    });
    const wrong = verifyJournal(tmp.dir, { anchor: { sequence: at, hash: "ab".repeat(32) } });
    expect(wrong.broken).toMatchObject({ sequence: at, kind: "anchor" });

    // the whole history rewritten consistently from record 10 on: the chain alone holds, the
    // anchor seen before does not
    withDb(tmp.dir, (db) => {
      let link: Uint8Array = rows(tmp.dir).find((r) => r.sequence === seqs[9])!.hash!;
      for (const r of rows(tmp.dir).filter((r) => r.sequence >= seqs[10]!)) {
        const payload = r.payload.replace(/"quality":"good"/, '"quality":"bad"');
        link = sha(link, r.sequence, payload);
        setPayload(db, r.sequence, payload);
        db.prepare("UPDATE records SET hash = ? WHERE sequence = ?").run(link, r.sequence);
      }
    });
    expect(verifyJournal(tmp.dir).ok).toBe(true);
    expect(verifyJournal(tmp.dir, { anchor: { sequence: at, hash } }).broken).toMatchObject({
      sequence: at,
      kind: "anchor",
    });
  });

  it("starts at --from, the record before it supplying the link", async () => {
    tmp = tempDir();
    const seqs = await seeded(40);
    expect(verifyJournal(tmp.dir, { from: seqs[20]! })).toMatchObject({
      ok: true,
      first: seqs[20],
      checked: 20,
    });
  });
});

describe("the chain across the journal's own changes", () => {
  it("holds after retention, which deletes a prefix only (times out of sequence order)", async () => {
    tmp = tempDir();
    let now = Date.now();
    const day = 86_400_000;
    const opts = { retentionMs: day, now: () => now, integrityCheck: false };
    journal = await openJournal(options(tmp.dir, opts));
    const old = now - 2 * day;
    // sequence order: old, old, young (a PLC clock ahead), old, old
    const times = [old, old + 1, now, old + 2, old + 3];
    const records = await journal.append(times.map((time) => event({ time })));
    journal.markPublished(records.map((r) => r.sequence));
    await journal.close();
    now += 1000;
    journal = await openJournal(options(tmp.dir, opts)); // retention runs at open
    await journal.close();
    journal = undefined;
    // the two old records before the young one went; the two behind it stay (longer, never less)
    expect(rows(tmp.dir).map((r) => r.sequence)).toEqual(records.slice(2).map((r) => r.sequence));
    const result = verifyJournal(tmp.dir);
    expect(result).toMatchObject({ ok: true, checked: 3 });
    expect(result.prunedThrough?.sequence).toBe(records[1]!.sequence);
  });

  it("holds after the size policy dropped the oldest records", async () => {
    tmp = tempDir();
    journal = await openJournal(options(tmp.dir, { maxBytes: 1024 * 1024, integrityCheck: false }));
    for (let i = 0; i < 40; i++) await journal.append(events(100));
    expect(journal.stats().dropped).toBeGreaterThan(0);
    await journal.close();
    journal = undefined;
    const kept = rows(tmp.dir);
    expect(kept[0]!.sequence).toBeGreaterThan(1000n); // the front went
    const result = verifyJournal(tmp.dir);
    expect(result).toMatchObject({ ok: true, checked: kept.length });
    expect(result.prunedThrough?.sequence).toBe(kept[0]!.sequence - 1n);
  });

  it("holds after replace() of a pending record a few records from the head", async () => {
    tmp = tempDir();
    journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
    const [reserved] = await journal.append([event({ subject: "reserved" })]);
    await journal.append(events(5));
    const before = rows(tmp.dir).at(-1)!.hash!;
    const online = await journal.replace(
      reserved!.sequence,
      event({ subject: "online", data: { status: "online" } }),
    );
    await journal.append(events(3));
    await journal.close();
    journal = undefined;
    const stored = rows(tmp.dir);
    expect(stored.find((r) => r.sequence === reserved!.sequence)!.payload).toBe(online.payload);
    expect(verifyJournal(tmp.dir)).toMatchObject({ ok: true, checked: 9 });
    expect(Buffer.from(stored[5]!.hash!).equals(Buffer.from(before))).toBe(false); // rehashed
  });

  it("holds after replace() with an outage's backlog behind the reserved record", async () => {
    tmp = tempDir();
    journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
    const [reserved] = await journal.append([event({ subject: "reserved" })]);
    for (let i = 0; i < 5; i++) await journal.append(events(500));
    await journal.replace(reserved!.sequence, event({ subject: "online" }));
    await journal.append(events(2));
    await journal.close();
    journal = undefined;
    expect(verifyJournal(tmp.dir)).toMatchObject({ ok: true, checked: 2503 });
  });

  it("refuses replace() of a record too far below the head: the chain is not rewritten", async () => {
    tmp = tempDir();
    journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
    const [reserved] = await journal.append([event({ subject: "reserved" })]);
    for (let i = 0; i < 11; i++) await journal.append(events(1000));
    const hashes = rows(tmp.dir).map((r) => Buffer.from(r.hash!).toString("hex"));
    await expect(journal.replace(reserved!.sequence, event({ subject: "online" }))).rejects.toThrow(
      /more than 10000 records below the head/,
    );
    await journal.close();
    journal = undefined;
    expect(rows(tmp.dir).map((r) => Buffer.from(r.hash!).toString("hex"))).toEqual(hashes);
    expect(verifyJournal(tmp.dir)).toMatchObject({ ok: true, checked: 11_001 });
  });

  it("migrates a user_version 2 journal without reading it: old rows before the chain", async () => {
    tmp = tempDir();
    const old = await seeded(30);
    withDb(tmp.dir, (db) =>
      db.exec(
        "ALTER TABLE records DROP COLUMN hash; DROP TABLE chain_segments; PRAGMA user_version = 2",
      ),
    );
    journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
    const fresh = await journal.append(events(10));
    await journal.close();
    journal = undefined;
    const stored = rows(tmp.dir);
    expect(stored.filter((r) => r.hash === null).map((r) => r.sequence)).toEqual(old);
    const result = verifyJournal(tmp.dir);
    expect(result).toMatchObject({
      ok: true,
      checked: 10,
      beforeChain: 30,
      first: fresh[0]!.sequence,
    });
    expect(result.segments).toEqual([
      expect.objectContaining({
        kind: "migrated",
        start: fresh[0]!.sequence,
        prevSequence: old.at(-1),
      }),
    ]);
  });

  it("after a salvage: a salvaged segment that says where the old chain ended", async () => {
    tmp = tempDir();
    await seeded(3000, 500);
    const original = rows(tmp.dir);
    const bytes = readFileSync(journalPath(tmp.dir));
    const middle = Math.floor(bytes.length / 4096 / 2) * 4096;
    bytes.fill(0x5a, middle, middle + 3 * 4096);
    writeFileSync(journalPath(tmp.dir), bytes);
    writeFileSync(checkFailedPath(tmp.dir), "damage\n"); // the next open runs the full check
    journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
    const after = await journal.append(events(5));
    await journal.close();
    journal = undefined;
    const moved = readdirSync(tmp.dir).find((f) => /^journal\.sqlite\.corrupt-.*Z$/.test(f));
    expect(moved).toBeDefined();
    const copied = rows(tmp.dir).filter((r) => r.sequence < after[0]!.sequence);
    expect(copied.length).toBeGreaterThan(2000);
    const result = verifyJournal(tmp.dir);
    expect(result).toMatchObject({
      ok: true,
      checked: copied.length + 5,
      last: after[4]!.sequence,
    });
    const lastOld = original.at(-1)!;
    expect(result.segments).toEqual([
      {
        kind: "salvaged",
        start: copied[0]!.sequence,
        prevSequence: lastOld.sequence,
        prevHash: Buffer.from(lastOld.hash!).toString("hex"),
        note: moved,
      },
    ]);

    // a record slipped into the gap between the salvaged records and the new ones
    const gap = copied.at(-1)!.sequence + 1n;
    withDb(tmp.dir, (db) => {
      const payload = copied
        .at(-1)!
        .payload.replace(/"sequence":"\d+"/, `"sequence":"${String(gap).padStart(20, "0")}"`);
      db.prepare(
        "INSERT INTO records(sequence, id, type, device, subject, time, topic, retain, payload, crc, hash) VALUES (?, 'x', 't', 'd', 's', 0, 'topic', 0, ?, ?, ?)",
      ).run(gap, payload, crc32(payload), sha(Buffer.alloc(32), gap, payload));
    });
    expect(verifyJournal(tmp.dir).broken).toMatchObject({ sequence: gap, kind: "inserted" });
  });
});

describe("the chain head the gateway publishes", () => {
  it("is the last record the publisher is done with, and a valid anchor", async () => {
    tmp = tempDir();
    journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
    expect(journal.chainHead?.()).toBeUndefined();
    const records = await journal.append(events(10));
    journal.markPublished(records.slice(0, 6).map((r) => r.sequence));
    const head = journal.chainHead?.();
    expect(head?.sequence).toBe(records[5]!.sequence);
    // a pending record after it is rewritten: the head stays what it was
    await journal.replace(records[7]!.sequence, event({ subject: "rewritten" }));
    await journal.close();
    journal = undefined;
    expect(verifyJournal(tmp.dir, { anchor: head! })).toMatchObject({ ok: true, anchorOk: true });
  });
});
