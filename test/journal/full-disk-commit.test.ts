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
 * append that resolved is all there, and every event pushed through the sink is journaled
 * exactly once once the disk has room again.
 */
import { afterEach, describe, expect, it } from "vitest";
import { EventSink } from "../../src/app/event-sink.ts";
import type { GatewayEvent } from "../../src/events/types.ts";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { isGatewayError } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { mountTmpfs, type Tmpfs } from "../chaos/tmpfs.ts";
import { event, options } from "./helpers.ts";

const MiB = 1024 * 1024;
/** Larger than the file system: the disk, not max_bytes, is what runs out. */
const MAX_BYTES = 8 * MiB;
const BATCH = 50;

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

/** Every record of the journal in `dir`, as value -> sequences (reopened from disk). */
async function storedValues(dir: string): Promise<Map<string, bigint[]>> {
  const journal = await openJournal(options(dir, { maxBytes: MAX_BYTES }));
  try {
    const out = new Map<string, bigint[]>();
    for (const r of journal.query({ limit: 1_000_000 })) {
      const value = String((JSON.parse(r.payload) as { data: { value: unknown } }).data.value);
      out.set(value, [...(out.get(value) ?? []), r.sequence]);
    }
    return out;
  } finally {
    await journal.close();
  }
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

  it("an append the journal rejects left nothing behind; one it resolved is all there", async () => {
    fs = mountTmpfs(4 * MiB);
    fs.fill(3 * MiB);
    const dir = `${fs.dir}/data`;
    journal = await openJournal(options(dir, { maxBytes: MAX_BYTES }));
    const resolved: string[] = [];
    let rejected: { tag: string; err: unknown } | undefined;
    for (let i = 0; i < 2000 && !rejected; i++) {
      const tag = `b${i}`;
      try {
        await journal.append(batch(tag));
        resolved.push(tag);
      } catch (err) {
        rejected = { tag, err };
      }
    }
    // the setup did what it is for: the disk filled up and an append was refused for it
    expect(rejected, "the tmpfs never filled up").toBeDefined();
    expect(isGatewayError(rejected!.err, "JOURNAL_FULL")).toBe(true);
    await journal.close().catch(() => {});
    journal = undefined;
    fs.release();

    const stored = await storedValues(dir);
    const leaked = Array.from({ length: BATCH }, (_, i) => `${rejected!.tag}-${i}`)
      .filter((v) => stored.has(v))
      .map((v) => `${v}@${stored.get(v)!.join(",")}`);
    expect(
      summary(leaked),
      `append of batch ${rejected!.tag} was rejected (${(rejected!.err as Error).message}) but its events are committed (value@sequence)`,
    ).toBe("none");
    const missing = resolved.flatMap((tag) =>
      Array.from({ length: BATCH }, (_, i) => `${tag}-${i}`).filter((v) => !stored.has(v)),
    );
    expect(summary(missing), "resolved appends missing from the journal").toBe("none");
  }, 60_000);

  it("the event sink journals every event exactly once across the full disk", async () => {
    fs = mountTmpfs(4 * MiB);
    fs.fill(3 * MiB);
    const dir = `${fs.dir}/data`;
    const opened = await openJournal(options(dir, { maxBytes: MAX_BYTES }));
    journal = opened;
    let refusals = 0;
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
    const pushed: string[] = [];
    for (let i = 0; i < 2000 && (refusals === 0 || i % 10 !== 0); i++) {
      const events = batch(`s${i}`);
      pushed.push(...events.map((e) => String(e.data.value)));
      sink.push(events);
      await sink.flush();
    }
    await sink.stop(10_000);
    expect(refusals, "the tmpfs never filled up").toBeGreaterThan(0);
    await opened.close();
    journal = undefined;

    const stored = await storedValues(dir);
    const twice = [...stored].filter(([, seqs]) => seqs.length > 1);
    expect(
      summary(twice.map(([v, seqs]) => `${v}@${seqs.join(",")}`)),
      "events journaled under more than one sequence, so more than one id (value@sequences)",
    ).toBe("none");
    expect(summary(pushed.filter((v) => !stored.has(v))), "pushed but never journaled").toBe(
      "none",
    );
  }, 60_000);
});
