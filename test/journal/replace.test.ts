/**
 * Journal.replace(): a pending record is rewritten in place (same sequence and id), durably;
 * a record that may have been published, or that the size policy dropped, is never rewritten.
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { isGatewayError } from "../../src/lib/errors.ts";
import { event, events, options, tempDir } from "./helpers.ts";

let tmp: ReturnType<typeof tempDir>;
let journal: Journal | undefined;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(async () => {
  await journal?.close();
  journal = undefined;
  tmp.remove();
});

/** Recent times: retention at open must not delete a published record under test. */
const T = Date.now() - 60_000;

function status(status: string, offset: number) {
  const time = T + offset;
  return event({
    type: "plc2mqtt.gateway.status",
    device: "gw-1",
    subject: "gw-1",
    time,
    data: { status, version: "1", started_at: new Date(time).toISOString() },
    topicClass: "status",
    asset: {},
  });
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isGatewayError(err, "JOURNAL_IO")).toBe(true);
  return (err as { details: { reason: string } }).details.reason;
}

describe("Journal.replace", () => {
  it("rewrites a pending record in place, durably: same sequence and id, new content", async () => {
    journal = await openJournal(options(tmp.dir));
    const [reserved] = await journal.append([status("offline", 1000)]);
    const later = await journal.append(events(2));
    const replaced = await journal.replace(reserved!.sequence, status("online", 5000));
    expect(replaced).toMatchObject({
      sequence: reserved!.sequence,
      id: reserved!.id,
      time: T + 5000,
    });
    expect(JSON.parse(replaced.payload)).toMatchObject({
      id: reserved!.id,
      sequence: String(reserved!.sequence).padStart(20, "0"),
      time: new Date(T + 5000).toISOString(),
      data: { status: "online" },
    });
    // what the drain hands out is the new record, still in its place in the sequence
    expect(journal.unpublished(0n, 10)).toEqual([replaced, ...later]);
    expect(journal.lastSequence()).toBe(later[1]!.sequence);
    await journal.close();
    // durable, with a checksum that matches: the reopened journal hands out the same record
    journal = await openJournal(options(tmp.dir));
    expect(journal.unpublished(0n, 1)).toEqual([replaced]);
    expect(journal.query({ from: T + 5000, to: T + 5000 })).toEqual([replaced]);
  });

  it("refuses a record marked published, even before the mark is committed", async () => {
    journal = await openJournal(options(tmp.dir, { commitIntervalMs: 60_000 }));
    const [record] = await journal.append([status("offline", 1000)]);
    journal.markPublished([record!.sequence]);
    expect(await refusal(journal.replace(record!.sequence, status("online", 2000)))).toBe(
      "published",
    );
    await journal.close();
    journal = await openJournal(options(tmp.dir));
    expect(await refusal(journal.replace(record!.sequence, status("online", 2000)))).toBe(
      "published",
    );
    expect(JSON.parse(journal.query({})[0]!.payload).data.status).toBe("offline");
  });

  it("refuses when the mark arrives while the rewrite waits for its commit", async () => {
    journal = await openJournal(options(tmp.dir));
    const [record] = await journal.append([status("offline", 1000)]);
    const pending = journal.replace(record!.sequence, status("online", 2000));
    journal.markPublished([record!.sequence]); // before the commit, which runs on a later tick
    expect(await refusal(pending)).toBe("published");
    expect(JSON.parse(journal.query({ limit: 1 })[0]!.payload).data.status).toBe("offline");
  });

  it("refuses a sequence that was never written", async () => {
    journal = await openJournal(options(tmp.dir));
    await journal.append(events(1));
    expect(await refusal(journal.replace(99n, status("online", 2000)))).toBe("gone");
  });

  it("refuses a record the size policy dropped", async () => {
    journal = await openJournal(
      options(tmp.dir, { maxBytes: 2 * 1024 * 1024, commitIntervalMs: 5 }),
    );
    const [reserved] = await journal.append([status("offline", 1000)]);
    for (let round = 0; round < 400 && journal.stats().dropped === 0; round++) {
      await Promise.all(
        Array.from({ length: 10 }, () =>
          journal!.append(events(10, { data: { value: "x".repeat(400) } })),
        ),
      );
    }
    expect(journal.stats().dropped).toBeGreaterThan(0);
    expect(await refusal(journal.replace(reserved!.sequence, status("online", 2000)))).toBe("gone");
  });

  it("refuses a corrupt record", async () => {
    journal = await openJournal(options(tmp.dir));
    const [record] = await journal.append([status("offline", 1000)]);
    await journal.close();
    const db = new DatabaseSync(join(tmp.dir, "journal.sqlite"));
    db.prepare("UPDATE records SET crc = crc + 1 WHERE sequence = ?").run(record!.sequence);
    db.close();
    journal = await openJournal(options(tmp.dir));
    expect(await refusal(journal.replace(record!.sequence, status("online", 2000)))).toBe(
      "corrupt",
    );
  });
});
