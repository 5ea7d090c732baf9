/**
 * The journal's in-memory tail of fresh records (src/journal/tail.ts, drain.ts) lets go of a
 * record once the publisher is done with it (issue 12, memory that stays flat): at the next
 * commit after its acknowledgement. Kept longer (a tail of 20,000 records, or a slot below the
 * tail's head kept until the array was compacted), every record outlived V8's young
 * generation, and the old generation filled with garbage at 10k events/s. Checked with the
 * collector itself: a record nobody else holds is gone after a full collection.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import { eventually } from "../support/resources.ts";
import { events, options, tempDir } from "./helpers.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.remove());

/** Weak references to what the publisher was handed, which it then acknowledged. */
async function publishedRecords(
  journal: Awaited<ReturnType<typeof openJournal>>,
  n: number,
): Promise<WeakRef<object>[]> {
  await journal.append(events(n));
  const handed = journal.unpublished(0n, n);
  expect(handed).toHaveLength(n);
  journal.markPublished(handed.map((r) => r.sequence));
  return handed.map((r) => new WeakRef(r));
}

it("lets go of the records the publisher is done with at the next commit", async () => {
  const journal = await openJournal(options(tmp.dir, { commitIntervalMs: 1 }));
  try {
    const refs = await publishedRecords(journal, 50);
    await journal.append(events(1)); // the next commit
    await eventually(
      async () => {
        await new Promise((r) => setImmediate(r));
        gc();
        return refs.every((ref) => ref.deref() === undefined);
      },
      5000,
      "acknowledged records collected",
    );
  } finally {
    await journal.close();
  }
});

it("keeps records not yet acknowledged (the publisher reads them from memory)", async () => {
  const journal = await openJournal(options(tmp.dir, { commitIntervalMs: 1 }));
  try {
    await journal.append(events(20));
    const refs = journal.unpublished(0n, 20).map((r) => new WeakRef(r));
    await journal.append(events(1));
    await new Promise((r) => setImmediate(r));
    gc();
    expect(refs.filter((ref) => ref.deref() === undefined)).toHaveLength(0);
    // handed out again from the tail: the same objects, not read back from SQLite
    expect(journal.unpublished(0n, 20)[0]).toBe(refs[0]!.deref());
  } finally {
    await journal.close();
  }
});
