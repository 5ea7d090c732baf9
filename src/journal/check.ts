/**
 * The journal's integrity check, off the event loop: `PRAGMA quick_check` on a read-only
 * connection in a worker thread, started once the journal is open (store.ts, recovery rule 2),
 * so opening a journal with a large backlog never waits for the whole file to be read.
 *
 * Invariants:
 * - The check only reads. Damage found is logged (error), reported to the journal (stats()
 *   `damage`, so health can say so), and left for the next open: the marker file
 *   journal.check-failed makes that open run the full check and its recovery rule (move aside,
 *   salvage). A journal in use is never moved or repaired under the running gateway.
 * - While it runs, its read snapshot keeps the WAL from being truncated by a checkpoint (the
 *   WAL may pass its reserve for that long: a few seconds per GiB on an SSD). The returned
 *   stop() ends it and resolves once its connection to the file is closed (the journal's
 *   close() waits for it: nothing of the journal holds the file after close).
 * - A check that cannot run (no worker, the file vanished) is logged at warn and otherwise
 *   ignored: it is a second line of defence; damage met while reading a record is skipped and
 *   counted at once anyway.
 */
import { writeFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import type { Logger } from "../lib/logger.ts";
import { isCorruption } from "./sqlite-errors.ts";
import { checkFailedPath } from "./store.ts";

const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { DatabaseSync } = require("node:sqlite");
let result;
try {
  const db = new DatabaseSync(workerData.path, { readOnly: true, timeout: 5000 });
  try {
    result = db.prepare("PRAGMA quick_check").all().map((r) => String(r.quick_check));
  } finally {
    db.close();
  }
} catch (err) {
  result = { error: String((err && err.message) || err), errcode: err && err.errcode };
}
parentPort.postMessage(result);
`;

export function startIntegrityCheck(
  path: string,
  dir: string,
  log: Logger,
  onDamage: (damage: string) => void,
): () => Promise<void> {
  let worker: Worker;
  try {
    worker = new Worker(WORKER, { eval: true, workerData: { path } });
  } catch (err) {
    log.warn({ err, path }, "journal integrity check could not start");
    return async () => {};
  }
  worker.unref();
  worker.on("error", (err) => log.warn({ err, path }, "journal integrity check failed to run"));
  worker.on("message", (result: string[] | { error: string; errcode?: number }) => {
    let damage: string;
    if (!Array.isArray(result)) {
      // the check itself meeting a damaged page is damage found, not a check that failed
      if (!isCorruption(result)) {
        log.warn({ path, error: result.error }, "journal integrity check failed to run");
        return;
      }
      damage = `quick_check: ${result.error}`;
    } else if (result.length === 1 && result[0] === "ok") {
      log.debug({ path }, "journal integrity check: ok");
      return;
    } else {
      damage = `quick_check: ${result.slice(0, 5).join("; ")}`;
    }
    log.error(
      { path, damage },
      "journal damaged: found by the background check; the next start moves it aside and salvages it",
    );
    try {
      writeFileSync(checkFailedPath(dir), `${new Date().toISOString()} ${damage}\n`);
    } catch (err) {
      log.warn({ err, path }, "cannot leave the marker for the next start");
    }
    onDamage(damage);
  });
  // resolves once the worker (and its connection to the file) is gone
  return async () => {
    await worker.terminate();
  };
}
