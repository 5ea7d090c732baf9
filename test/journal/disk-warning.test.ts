/**
 * At start the journal warns when journal.max_bytes is larger than its file system can hold
 * (issue 14: a 4 MiB data_dir under a 1 GiB max_bytes filled up with no word said): once, with
 * both figures, on a real small tmpfs; a max_bytes that fits says nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { mountTmpfs, type Tmpfs } from "../chaos/tmpfs.ts";
import { captureLogger, events, options } from "./helpers.ts";

const MiB = 1024 * 1024;
const WARNING = /^journal\.max_bytes \(.+ MiB\) is larger than the free space of its file system/;

describe("max_bytes against the file system's free space", () => {
  let fs: Tmpfs | undefined;
  let journal: Journal | undefined;
  afterEach(async () => {
    await journal?.close().catch(() => {});
    journal = undefined;
    fs?.unmount();
    fs = undefined;
  });

  async function warningsFor(maxBytes: number) {
    fs = mountTmpfs(4 * MiB);
    const capture = captureLogger();
    journal = await openJournal(
      options(`${fs.dir}/data`, { maxBytes, commitIntervalMs: 5, log: capture.log }),
    );
    await journal.append(events(20));
    await journal.append(events(20));
    return capture.lines.filter((l) => WARNING.test(String(l.msg)));
  }

  it("warns once when max_bytes is larger than the disk", async () => {
    const warned = await warningsFor(1024 * MiB);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, max_bytes: 1024 * MiB });
    expect(Number(warned[0]!.capacity)).toBeLessThanOrEqual(4 * MiB);
  });

  it("says nothing when max_bytes fits", async () => {
    expect(await warningsFor(2 * MiB)).toEqual([]);
  });
});
