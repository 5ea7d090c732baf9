/** What the replay suites (replay.test.ts, replay-requests.test.ts) check of a replayed stream. */
import { expect } from "vitest";
import type { JournalRecord } from "../../src/journal/index.ts";

/** A message as the replay suites receive it: its topic, retain flag and parsed document. */
export interface ReplayedMessage {
  topic: string;
  retain: boolean;
  doc: Record<string, unknown> & { id: string; sequence: string; replay?: boolean };
}

/**
 * `received` is a replay of `expected`, in order: the same records (ids and sequences), each on
 * its topic, never retained, marked `replay: true`, and otherwise the journaled document.
 */
export function expectReplayOf(
  received: readonly ReplayedMessage[],
  expected: readonly JournalRecord[],
): void {
  expect(received.map((m) => m.doc.id)).toEqual(expected.map((r) => r.id));
  expect(received.map((m) => BigInt(m.doc.sequence))).toEqual(expected.map((r) => r.sequence));
  received.forEach((m, i) => {
    const record = expected[i]!;
    expect(m.topic).toBe(record.topic);
    expect(m.retain).toBe(false);
    expect(m.doc.replay).toBe(true);
    const { replay: _, ...original } = m.doc;
    expect(original).toEqual(JSON.parse(record.payload)); // same id, sequence, time, data
  });
}
