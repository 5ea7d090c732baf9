/**
 * The journal's in-memory tail (src/journal/tail.ts): consecutive records in a ring of fixed
 * size, the oldest leaving first by count and by payload bytes, rewritten and dropped records,
 * a push that does not continue it starting it afresh.
 */
import { expect, it } from "vitest";
import { RecordTail } from "../../src/journal/tail.ts";
import type { JournalRecord } from "../../src/journal/types.ts";

function record(sequence: number, payload = `{"v":${sequence}}`): JournalRecord {
  return {
    sequence: BigInt(sequence),
    id: `id-${sequence}`,
    type: "t",
    device: "d",
    subject: "s",
    time: sequence,
    topic: "x",
    retain: false,
    payload,
  };
}

function records(from: number, n: number): JournalRecord[] {
  return Array.from({ length: n }, (_, i) => record(from + i));
}

const seqs = (list: readonly JournalRecord[]) => list.map((r) => Number(r.sequence));

it("hands out consecutive records from any sequence held, across the ring's wrap", () => {
  const tail = new RecordTail(4, 1 << 20);
  expect(tail.covers(1n)).toBe(false);
  tail.push(records(1, 3));
  tail.dropThrough(2n);
  tail.push(records(4, 3)); // 3..6: wraps around the 4 slots
  expect(tail.size).toBe(4);
  expect(tail.first).toBe(3n);
  expect(seqs(tail.from(3n, 10))).toEqual([3, 4, 5, 6]);
  expect(seqs(tail.from(5n, 1))).toEqual([5]);
  expect(tail.from(7n, 5)).toEqual([]);
  expect(tail.get(6n)?.sequence).toBe(6n);
  expect(tail.get(7n)).toBeUndefined();
  expect(tail.get(2n)).toBeUndefined();
});

it("lets the oldest go when full, by count and by payload bytes", () => {
  const byCount = new RecordTail(3, 1 << 20);
  byCount.push(records(1, 5));
  expect(seqs(byCount.from(byCount.first!, 10))).toEqual([3, 4, 5]);

  const byBytes = new RecordTail(100, 25);
  byBytes.push([record(1, "a".repeat(10)), record(2, "b".repeat(10)), record(3, "c".repeat(10))]);
  expect(byBytes.first).toBe(2n);
  byBytes.push([record(4, "d".repeat(100))]); // alone over the budget: the last one stays
  expect(seqs(byBytes.from(byBytes.first!, 10))).toEqual([4]);
});

it("rewrites a record held, drops through a sequence, and starts afresh on a gap", () => {
  const tail = new RecordTail(8, 1 << 20);
  tail.push(records(10, 4));
  tail.replace(record(11, "new"));
  tail.replace(record(20, "not held"));
  expect(tail.get(11n)?.payload).toBe("new");
  tail.dropThrough(11n);
  expect(tail.first).toBe(12n);
  tail.push(records(20, 2)); // not 14: the tail starts again there
  expect(seqs(tail.from(tail.first!, 10))).toEqual([20, 21]);
  tail.clear();
  expect(tail.size).toBe(0);
  expect(tail.first).toBeUndefined();
  tail.push(records(30, 1));
  expect(tail.first).toBe(30n);
});
