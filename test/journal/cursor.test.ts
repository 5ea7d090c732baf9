/**
 * The publisher's cursor (journal/cursor.ts): it moves over acknowledged records only, never
 * past one still in flight, in whatever order acknowledgements come, and passes a hole (a record
 * missing since a salvage) only when the list of records handed out runs from the cursor on.
 */
import { describe, expect, it } from "vitest";
import { SinkCursor } from "../../src/journal/cursor.ts";

const hand = (cursor: SinkCursor, ...sequences: bigint[]) => {
  for (const s of sequences) cursor.hand(s);
};

describe("SinkCursor", () => {
  it("moves over the longest acknowledged run, whatever the order of the acknowledgements", () => {
    const cursor = new SinkCursor(4n);
    hand(cursor, 5n, 6n, 7n);
    expect(cursor.ack([6n, 7n])).toBe(0);
    expect(cursor.done).toBe(4n);
    expect(cursor.ack([5n])).toBe(3);
    expect(cursor.done).toBe(7n);
  });

  it("passes a hole when what was handed out runs from the cursor on", () => {
    const cursor = new SinkCursor(4n);
    hand(cursor, 5n, 9n); // 6-8 lost in a salvage
    cursor.ack([5n, 9n]);
    expect(cursor.done).toBe(9n);
  });

  it("never jumps over records still in flight when a retry reads from further on", () => {
    // 5-8 in flight; a retry reads again from 7 on (5 and 6 still waiting for their PUBACK)
    const cursor = new SinkCursor(4n);
    hand(cursor, 5n, 6n, 7n, 8n);
    cursor.restart(7n);
    hand(cursor, 7n, 8n);
    cursor.ack([7n, 8n]);
    expect(cursor.done).toBe(4n);
    expect(cursor.isAcked(5n)).toBe(false);
    cursor.ack([5n, 6n]);
    expect(cursor.done).toBe(8n);
  });
});
