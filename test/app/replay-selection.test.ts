/**
 * What a replay request is answered with (`accepted {count, from_sequence, to_sequence}`) comes
 * from one aggregate statement over the journal (replaySelection), never from decoding the
 * range's end records: a corrupt row at either end of the range must not hide the range or
 * shift its ends. On a real journal file, a row's crc broken with SQLite directly.
 */
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { replaySelection } from "../../src/app/replay-requests.ts";
import { openJournal, openJournalReader } from "../../src/journal/index.ts";
import { journalPath } from "../../src/journal/store.ts";
import { event, options, tempDir } from "../journal/helpers.ts";

describe("the range a replay request is accepted for", () => {
  let tmp: ReturnType<typeof tempDir> | undefined;
  afterEach(() => {
    tmp?.remove();
    tmp = undefined;
  });

  async function publishedJournal(): Promise<{ dir: string; sequences: bigint[] }> {
    tmp = tempDir();
    const journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
    const records = await journal.append(
      Array.from({ length: 10 }, (_, i) => event({ time: 1_000_000 + i })),
    );
    journal.markPublished(records.map((r) => r.sequence));
    await journal.close();
    return { dir: tmp.dir, sequences: records.map((r) => r.sequence) };
  }

  function breakCrc(dir: string, sequence: bigint): void {
    const db = new DatabaseSync(journalPath(dir));
    db.prepare("UPDATE records SET crc = crc + 1 WHERE sequence = ?").run(sequence);
    db.close();
  }

  const request = { from: 0, to: 2_000_000 };

  it.each([
    ["the newest", -1],
    ["the oldest", 0],
  ])("counts every matching record, with its true ends, when %s row is corrupt", async (_, at) => {
    const { dir, sequences } = await publishedJournal();
    breakCrc(dir, sequences.at(at)!);
    const reader = openJournalReader(dir);
    try {
      expect(replaySelection(reader, request)).toEqual({
        count: 10,
        first: sequences[0],
        last: sequences.at(-1),
      });
      expect(reader.corruptSkipped, "selecting decodes no row").toBe(0);
    } finally {
      reader.close();
    }
  });

  it("finds nothing in a range without events", async () => {
    const { dir } = await publishedJournal();
    const reader = openJournalReader(dir);
    try {
      expect(replaySelection(reader, { from: 0, to: 10 })).toEqual({ count: 0 });
    } finally {
      reader.close();
    }
  });
});
