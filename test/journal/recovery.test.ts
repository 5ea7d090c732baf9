/**
 * Recovery and failure: damaged files are moved aside and a new journal continues the
 * sequence; a garbage row is skipped and counted; a refused write rejects with a GatewayError
 * and keeps nothing; kill -9 loses no committed event.
 */
import { execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import { isGatewayError } from "../../src/lib/errors.ts";
import { eventually } from "../support/resources.ts";
import { captureLogger, event, events, options, tempDir } from "./helpers.ts";

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.remove());

const file = () => join(tmp.dir, "journal.sqlite");
const movedAside = () =>
  readdirSync(tmp.dir).filter((f) => f.startsWith("journal.sqlite.corrupt-"));

async function seed(n: number): Promise<string> {
  const journal = await openJournal(options(tmp.dir));
  await journal.append(events(n));
  await journal.close();
  return journal.epoch;
}

describe("damaged journal files", () => {
  it("moves a file that is not a database aside and continues the sequence", async () => {
    const oldEpoch = await seed(5);
    writeFileSync(file(), "this is not a journal\n".repeat(500));
    const capture = captureLogger();
    const journal = await openJournal(options(tmp.dir, { log: capture.log }));
    expect(movedAside()).toHaveLength(1);
    expect(readFileSync(join(tmp.dir, movedAside()[0]!), "utf8")).toContain("not a journal");
    expect(capture.messages("journal damaged: moved aside, starting anew")).toHaveLength(1);
    expect(journal.epoch).not.toBe(oldEpoch);
    const [rec] = await journal.append([event()]);
    expect(rec!.sequence).toBeGreaterThan(5n);
    await journal.close();
  });

  it("never reuses a sequence when both the journal and its ceiling file are damaged", async () => {
    await seed(5);
    writeFileSync(file(), "damaged\n".repeat(500));
    writeFileSync(join(tmp.dir, "journal.seq"), "garbage\n");
    const journal = await openJournal(options(tmp.dir));
    const [rec] = await journal.append([event()]);
    // nothing on disk says what was used: the time floor is above anything this folder issued
    expect(rec!.sequence).toBeGreaterThan(BigInt(Date.now() - 60_000) * 1000n);
    await journal.close();
  });

  it("moves another application's database aside", async () => {
    const other = new DatabaseSync(file());
    other.exec("CREATE TABLE customers (name TEXT); INSERT INTO customers VALUES ('acme')");
    other.close();
    const journal = await openJournal(options(tmp.dir));
    expect(movedAside()).toHaveLength(1);
    expect((await journal.append([event()]))[0]!.sequence).toBe(1n);
    await journal.close();
  });

  it("moves a journal with damaged pages aside", async () => {
    await seed(2000);
    const bytes = readFileSync(file());
    bytes.fill(0xa5, 4096 * 3, 4096 * 6); // pages 4-6: b-tree pages of records and indexes
    writeFileSync(file(), bytes);
    const journal = await openJournal(options(tmp.dir));
    expect(movedAside()).toHaveLength(1);
    expect((await journal.append([event()]))[0]!.sequence).toBeGreaterThan(2000n);
    await journal.close();
  });

  it("salvages every readable record of a damaged journal: same sequence, id, payload, cursor", async () => {
    const seeded = await openJournal(options(tmp.dir));
    const originals = await seeded.append(events(3000));
    seeded.markPublished(originals.slice(0, 1000).map((r) => r.sequence));
    await seeded.append([event()]); // commits the marks
    await seeded.close();
    const bytes = readFileSync(file());
    // damage pages in the middle of the file: table leaves holding records
    const middle = Math.floor(bytes.length / 4096 / 2) * 4096;
    bytes.fill(0x5a, middle, middle + 3 * 4096);
    writeFileSync(file(), bytes);

    // opening reads only what it must: the check in the background finds the damage, says so,
    // and leaves it to the next start
    const first = await openJournal(options(tmp.dir));
    await eventually(() => first.stats().damage !== undefined, 20_000, "the background check");
    expect(first.stats().damage).toMatch(/quick_check/);
    expect(movedAside()).toHaveLength(0);
    await first.close();

    const capture = captureLogger();
    const journal = await openJournal(options(tmp.dir, { log: capture.log }));
    expect(movedAside()).toHaveLength(1);
    const [report] = capture.messages(
      "journal salvage: records copied from the damaged file",
    ) as unknown as {
      copied: number;
      pending: number;
      lost: number;
    }[];
    const copied = journal.query({ limit: 10_000 });
    expect(copied.length).toBe(report!.copied);
    expect(copied.length).toBeGreaterThan(2000); // most of it survives three bad pages
    expect(copied.length).toBeLessThan(3001); // and the damage was real
    const bySequence = new Map(originals.map((r) => [r.sequence, r]));
    for (const r of copied) {
      const original = bySequence.get(r.sequence);
      if (original === undefined) continue; // the marking append's event
      expect(r.id).toBe(original.id);
      expect(r.payload).toBe(original.payload);
      expect(r.published === true).toBe(r.sequence <= 1000n);
    }
    // the salvaged pending records go out first, in order; new events come after them
    const pending = journal.unpublished(0n, 10_000);
    expect(pending.length).toBe(report!.pending);
    expect(pending.every((r) => r.sequence > 1000n)).toBe(true);
    const [next] = await journal.append([event()]);
    expect(next!.sequence).toBeGreaterThan(3001n);
    expect(journal.stats().corruptSkipped).toBe(report!.lost);
    await journal.close();
  });

  it("skips a row whose payload is damaged, counts it once and reports it", async () => {
    await seed(3);
    const db = new DatabaseSync(file());
    db.exec('UPDATE records SET payload = \'{"specversion":"1.0",garbage\' WHERE sequence = 2');
    db.close();
    const capture = captureLogger();
    const journal = await openJournal(options(tmp.dir, { log: capture.log }));
    expect(journal.unpublished(0n, 10).map((r) => r.sequence)).toEqual([1n, 3n]);
    expect(journal.unpublished(0n, 10).map((r) => r.sequence)).toEqual([1n, 3n]);
    expect(journal.stats().corruptSkipped).toBe(1);
    const reports = capture.messages("journal record corrupt: skipped");
    expect(reports).toHaveLength(1);
    expect(reports[0]!.sequence).toBe("2");
    await journal.close();
  });
});

describe("refused writes", () => {
  it("rejects openJournal with JOURNAL_IO when the folder cannot be made", async () => {
    writeFileSync(join(tmp.dir, "not-a-dir"), "");
    for (const dir of [join(tmp.dir, "not-a-dir", "journal"), "/proc/self/plc2mqtt-journal"]) {
      const err = await openJournal(options(dir)).catch((e: unknown) => e);
      expect(isGatewayError(err, "JOURNAL_IO")).toBe(true);
      expect((err as Error).message).toContain(dir);
    }
  });

  it("rejects an append the disk refuses with JOURNAL_IO, keeps nothing, and recovers", async () => {
    const journal = await openJournal(options(tmp.dir));
    await journal.append(events(2));
    const other = new DatabaseSync(file(), { timeout: 0 });
    other.exec("BEGIN IMMEDIATE"); // another process holds the write lock
    const err = await journal.append(events(3)).catch((e: unknown) => e);
    expect(isGatewayError(err, "JOURNAL_IO")).toBe(true);
    expect((err as Error).message).toMatch(/locked/);
    other.exec("ROLLBACK");
    other.close();
    const [next] = await journal.append([event()]);
    expect(next!.sequence).toBe(3n);
    expect(journal.unpublished(0n, 10).map((r) => r.sequence)).toEqual([1n, 2n, 3n]);
    await journal.close();
  });
});

describe("full disk", () => {
  it("rejects with a GatewayError naming the file, and every committed event survives", async () => {
    const script = join(import.meta.dirname, "fixtures", "full-disk-writer.ts");
    // ulimit -f: the kernel refuses to grow any file past 1 MiB, as a full disk would.
    const out = execFileSync(
      "sh",
      ["-c", 'ulimit -f 2048 && exec "$0" "$1" "$2"', process.execPath, script, tmp.dir],
      { encoding: "utf8", timeout: 60_000 },
    );
    const result = JSON.parse(out) as {
      committed: string[];
      refused?: { code?: string; message: string };
    };
    expect(result.refused?.code).toMatch(/^JOURNAL_(FULL|IO)$/);
    expect(result.refused?.message).toContain(file());
    expect(result.committed.length).toBeGreaterThan(0);
    const journal = await openJournal(options(tmp.dir));
    const stored = journal.unpublished(0n, 1_000_000).map((r) => String(r.sequence));
    expect(stored).toEqual(result.committed); // all committed, nothing of the refused batch
    await journal.append([event()]);
    await journal.close();
  });
});

describe("crash durability", () => {
  it("keeps every event whose append resolved when the process is killed with SIGKILL", async () => {
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, "fixtures", "crash-writer.ts"), tmp.dir],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const printed: bigint[] = [];
    let buffered = "";
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await new Promise<void>((resolve, reject) => {
      child.once("exit", () => reject(new Error("crash writer exited early")));
      child.stdout!.on("data", (chunk: Buffer) => {
        buffered += chunk.toString("utf8");
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) if (/^\d+$/.test(line)) printed.push(BigInt(line));
        if (printed.length >= 2000) {
          child.kill("SIGKILL");
          resolve();
        }
      });
    });
    await exited;
    const journal = await openJournal(options(tmp.dir));
    const stored = new Set(journal.unpublished(0n, 1_000_000).map((r) => r.sequence));
    expect(printed.filter((s) => !stored.has(s))).toEqual([]);
    const [next] = await journal.append([event()]);
    expect(next!.sequence).toBeGreaterThan(printed.at(-1)!);
    await journal.close();
  });
});
