/**
 * A failure after the commit point never un-commits in the caller's eyes (issue 12, point 6),
 * on a real full file system: a small tmpfs, filled until the journal's writes meet ENOSPC.
 *
 * Why the disk fills at a checkpoint first: between checkpoints the WAL grows by group commits;
 * a checkpoint then copies its pages into the main file while the WAL is still there, so the
 * disk is fullest during a checkpoint. A journal that runs its checkpoint after COMMIT in the
 * same error path as the commit reports a committed group as failed (SQLITE_FULL from
 * `wal_checkpoint`): the caller sees a rejection for events that are in the journal, and the
 * event sink, which retries a disk refusal, stores them a second time under new sequences and
 * ids. The contract asserted here: an append that rejects left nothing in the journal, an
 * append that resolved is all there (but for the oldest events the size policy dropped, and
 * counted, to stay inside the disk), and every event pushed through the sink is journaled
 * exactly once once the disk has room again.
 *
 * The journal treats a full disk as its size limit (disk-space.ts): it measures the disk
 * before its commits and keeps room for its WAL and its checkpoints. So here another writer
 * (a filler file) takes the room behind its back, before every append from the fourth on,
 * leaving LEAVE bytes: enough for a group's WAL frames, not for the pages the checkpoint
 * after that COMMIT must add to the main file. The checkpoint fails after the commit point
 * (the journal then releases its reserve and makes room), and once the writer has taken every
 * byte the journal could free, appends are refused.
 */
import { afterEach, describe, expect, it } from "vitest";
import { EventSink } from "../../src/app/event-sink.ts";
import { EVENT_TYPES, type GatewayEvent } from "../../src/events/types.ts";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { isGatewayError } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { mountTmpfs, type Tmpfs } from "../chaos/tmpfs.ts";
import { captureLogger, event, options } from "./helpers.ts";

const MiB = 1024 * 1024;
/** Larger than the file system: the disk, not max_bytes, is what runs out. */
const MAX_BYTES = 8 * MiB;
const BATCH = 50;
/** Free bytes the other writer leaves: a batch's WAL frames (about 60 KiB) fit, a checkpoint's growth not. */
const LEAVE = 80 * 1024;
/** What the journal logs when the checkpoint after a COMMIT failed. */
const STANDS = "journal checkpoint after a commit failed (the commit stands)";

/** A batch of events whose values name them: `<tag>-<i>` plus padding (about 600-byte rows). */
function batch(tag: string): GatewayEvent[] {
  return Array.from({ length: BATCH }, (_, i) =>
    event({ data: { value: `${tag}-${i}`, pad: "p".repeat(300), quality: "good" } }),
  );
}

/** "none", or how many and the first few: short enough to read in a failure. */
function summary(items: readonly string[]): string {
  if (items.length === 0) return "none";
  return `${items.length}: ${items.slice(0, 3).join(" ")}${items.length > 3 ? " ..." : ""}`;
}

/**
 * Every record of the journal in `dir`, as value -> sequences, and the events its size policy
 * dropped (reopened from disk).
 */
async function storedValues(
  dir: string,
): Promise<{ stored: Map<string, bigint[]>; dropped: number }> {
  const journal = await openJournal(options(dir, { maxBytes: MAX_BYTES }));
  try {
    const stored = new Map<string, bigint[]>();
    for (const r of journal.query({ limit: 1_000_000 })) {
      if (r.type === EVENT_TYPES.journalOverflow) continue; // the size policy's notices
      const value = String((JSON.parse(r.payload) as { data: { value: unknown } }).data.value);
      stored.set(value, [...(stored.get(value) ?? []), r.sequence]);
    }
    return { stored, dropped: journal.stats().dropped };
  } finally {
    await journal.close();
  }
}

/**
 * Events `expected` that the journal does not hold and its size policy cannot account for:
 * a drop takes the oldest pending events first and is counted, so every missing one must be
 * older than every kept one, and no more must be missing than were dropped.
 */
function unaccounted(
  expected: readonly string[],
  stored: Map<string, bigint[]>,
  dropped: number,
): string[] {
  const missing = expected.filter((v) => !stored.has(v));
  const firstKept = expected.findIndex((v) => stored.has(v));
  const late = missing.filter((v) => expected.indexOf(v) > firstKept);
  if (late.length > 0) return late;
  return missing.length > dropped ? missing.slice(dropped) : [];
}

describe("full disk after the commit point (real tmpfs)", () => {
  let fs: Tmpfs | undefined;
  let journal: Journal | undefined;
  afterEach(async () => {
    await journal?.close().catch(() => {});
    journal = undefined;
    fs?.unmount();
    fs = undefined;
  });

  /**
   * Runs `scenario` on a fresh 8 MiB tmpfs with 4 MiB taken, then `check` on the journal it
   * left, until a checkpoint after a COMMIT met the full disk: at most 3 tries (the writer must
   * fill the disk before the journal measures it again, within 100 ms, which a stalled machine
   * can miss). Every try is checked: a journal that un-commits fails the first.
   */
  async function untilAfterCommitFailure(
    scenario: (dir: string, log: ReturnType<typeof captureLogger>["log"]) => Promise<void>,
    check: (dir: string) => Promise<void>,
  ): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      await journal?.close().catch(() => {});
      journal = undefined;
      fs?.unmount();
      fs = mountTmpfs(8 * MiB);
      fs.fill(4 * MiB);
      const dir = `${fs.dir}/data`;
      const capture = captureLogger();
      await scenario(dir, capture.log); // opens `journal`
      await (journal as Journal | undefined)?.close().catch(() => {});
      journal = undefined;
      fs.release();
      await check(dir);
      if (capture.messages(STANDS).length > 0) return;
    }
    throw new Error("no checkpoint after a COMMIT met the full disk in 3 tries");
  }

  it("an append the journal rejects left nothing behind; one it resolved is all there", async () => {
    let resolved: string[] = [];
    let rejected: { tag: string; err: unknown } | undefined;
    await untilAfterCommitFailure(
      async (dir, log) => {
        const opened = await openJournal(
          options(dir, { maxBytes: MAX_BYTES, commitIntervalMs: 5, log }),
        );
        journal = opened;
        resolved = [];
        rejected = undefined;
        for (let i = 0; i < 2000 && !rejected; i++) {
          if (i >= 3) fs!.fill(LEAVE); // another writer takes the room
          const tag = `b${i}`;
          try {
            await opened.append(batch(tag));
            resolved.push(tag);
          } catch (err) {
            rejected = { tag, err };
          }
        }
      },
      async (dir) => {
        // the setup did what it is for: the disk filled up and an append was refused for it
        expect(rejected, "the tmpfs never filled up").toBeDefined();
        const { stored, dropped } = await storedValues(dir);
        const leaked = Array.from({ length: BATCH }, (_, i) => `${rejected!.tag}-${i}`)
          .filter((v) => stored.has(v))
          .map((v) => `${v}@${stored.get(v)!.join(",")}`);
        expect(
          summary(leaked),
          `append of batch ${rejected!.tag} was rejected (${(rejected!.err as Error).message}) but its events are committed (value@sequence)`,
        ).toBe("none");
        expect(isGatewayError(rejected!.err, "JOURNAL_FULL")).toBe(true);
        const missing = unaccounted(
          resolved.flatMap((tag) => Array.from({ length: BATCH }, (_, i) => `${tag}-${i}`)),
          stored,
          dropped,
        );
        expect(summary(missing), "resolved appends missing from the journal").toBe("none");
      },
    );
  }, 60_000);

  it("the event sink journals every event exactly once across the full disk", async () => {
    let refusals = 0;
    let pushed: string[] = [];
    await untilAfterCommitFailure(
      async (dir, log) => {
        const opened = await openJournal(
          options(dir, { maxBytes: MAX_BYTES, commitIntervalMs: 5, log }),
        );
        journal = opened;
        refusals = 0;
        pushed = [];
        const sink = new EventSink({
          journal: {
            append: (events) =>
              opened.append(events).catch((err: unknown) => {
                refusals++;
                // the disk gets room again: the sink's retry must not store anything twice
                fs?.release();
                throw err;
              }),
          },
          log: silentLogger(),
          gatewayId: "gw-1",
        });
        for (let i = 0; i < 2000 && (refusals === 0 || i % 10 !== 0); i++) {
          if (i >= 3 && refusals === 0) fs!.fill(LEAVE); // another writer takes the room
          const events = batch(`s${i}`);
          pushed.push(...events.map((e) => String(e.data.value)));
          sink.push(events);
          await sink.flush();
        }
        await sink.stop(10_000);
      },
      async (dir) => {
        const { stored, dropped } = await storedValues(dir);
        const twice = [...stored].filter(([, seqs]) => seqs.length > 1);
        expect(
          summary(twice.map(([v, seqs]) => `${v}@${seqs.join(",")}`)),
          "events journaled under more than one sequence, so more than one id (value@sequences)",
        ).toBe("none");
        expect(summary(unaccounted(pushed, stored, dropped)), "pushed but never journaled").toBe(
          "none",
        );
        expect(refusals, "the tmpfs never filled up").toBeGreaterThan(0);
      },
    );
  }, 60_000);
});
