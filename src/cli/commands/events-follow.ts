/**
 * `plc2mqtt events --follow`: after the matching events already there, the ones committed
 * later, as they come, like `tail -f`, until the signal aborts (SIGINT, SIGTERM: exit 0).
 *
 * How: every POLL_MS, one short read of the rows above the last sequence looked at (the
 * primary key; a --where prefilter reads only those new rows), never a transaction held open,
 * so the daemon's commits and checkpoints go on. The highest sequence is taken before the
 * read and the read stops there, so a row committed meanwhile is left for the next round,
 * never printed twice or skipped. What the daemon does meanwhile does not matter: a WAL
 * checkpoint (even TRUNCATE) or retention removing old rows changes nothing above the last
 * sequence, and sequences never go backwards, not even in a journal recreated after damage
 * (store.ts rule 1): a reader whose file was replaced (another inode at the path) is opened
 * again on the new one. A reader opened `immutable` (the journal had no -wal: no daemon) is
 * opened again once a -wal appears (a daemon started), and so is one whose read failed (the
 * file moved aside or briefly missing): the failure is said once on stderr, and the follower
 * keeps trying.
 */
import { existsSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type JournalReader,
  type JournalRecord,
  openJournalReader,
  type ReaderQuery,
} from "../../journal/index.ts";
import { errorMessage } from "../../lib/errors.ts";

export const POLL_MS = 250;
const PAGE = 5000;

export interface FollowRequest {
  dir: string;
  /** The reader the first part was printed from (closed by follow). */
  reader: JournalReader;
  query: ReaderQuery;
  /** Every row at or below this sequence was looked at already. */
  after: bigint;
  print(records: readonly JournalRecord[]): Promise<void>;
  signal: AbortSignal;
  warn(line: string): void;
}

export async function follow(request: FollowRequest): Promise<void> {
  const { dir, query, signal } = request;
  let reader: JournalReader | undefined = request.reader;
  let file = inode(reader.path);
  let after = request.after;
  let failing = false;
  try {
    while (!signal.aborted) {
      await sleep(POLL_MS, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return;
      try {
        if (reader && (stale(reader) || inode(reader.path) !== file)) {
          reader.close();
          reader = undefined;
        }
        if (reader === undefined) {
          reader = openJournalReader(dir);
          file = inode(reader.path);
        }
        const last = reader.lastSequence();
        if (last !== undefined && last > after) {
          let chunk: JournalRecord[] = [];
          // scan pages by rows read, so a corrupt row skipped never ends it early
          for (const record of reader.scan({
            ...query,
            afterSequence: after,
            beforeSequence: last + 1n,
          })) {
            chunk.push(record);
            if (chunk.length === PAGE) {
              await request.print(chunk);
              chunk = [];
            }
          }
          await request.print(chunk);
          after = last;
        }
        if (failing) request.warn("journal readable again: following");
        failing = false;
      } catch (err) {
        reader?.close();
        reader = undefined;
        if (!failing) request.warn(`cannot read the journal (retrying): ${errorMessage(err)}`);
        failing = true;
      }
    }
  } finally {
    reader?.close();
  }
}

/** An `immutable` reader does not see a daemon's writes: a -wal says one has the file now. */
function stale(reader: JournalReader): boolean {
  return reader.immutable && existsSync(`${reader.path}-wal`);
}

/** The file's identity: another one after the daemon moved a damaged journal aside. */
function inode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}
