/**
 * `plc2mqtt events verify`, the built CLI run as a process: exit 0 and one summary line on an
 * intact journal, exit 1 and the first bad sequence on one changed with SQLite directly; an
 * anchor that matches, one that does not, one that was pruned; usage errors exit 2.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import { journalPath } from "../../src/journal/store.ts";
import { events, options } from "../journal/helpers.ts";
import { runCli } from "../support/cli.ts";

describe("plc2mqtt events verify", () => {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-verify-"));
  const data = join(dir, "data");
  const config = join(dir, "gateway.yaml");
  let sequences: bigint[] = [];
  let head: { sequence: bigint; hash: string } | undefined;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeAll(async () => {
    writeFileSync(config, `version: 1\ngateway: { id: gw-1, data_dir: ${data} }\n`);
    const journal = await openJournal(options(data, { integrityCheck: false }));
    sequences = (await journal.append(events(50))).map((r) => r.sequence);
    journal.markPublished(sequences.slice(0, 20));
    head = journal.chainHead?.();
    await journal.close();
  });

  it("exits 0 with one summary line on an intact journal, and checks an anchor", async () => {
    const ok = await runCli(["events", "verify", "-c", config]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("chain segment new starts at sequence 1\n");
    expect(ok.stdout).toMatch(
      /^chain intact: 50 records checked, 1 segment\(s\), sequences 1 to 50, head hash [0-9a-f]{64}$/m,
    );
    // the head a status would carry, given as an anchor (options before the sub-command too)
    expect(head?.sequence).toBe(20n);
    const anchored = await runCli([
      "events",
      "-c",
      config,
      "verify",
      "--anchor",
      `${head!.sequence}:${head!.hash}`,
    ]);
    expect(anchored.code, anchored.stderr).toBe(0);
    expect(anchored.stdout).toMatch(/chain intact: 31 records checked, .* anchor matches$/m);
    const wrong = await runCli([
      "events",
      "verify",
      "-c",
      config,
      "--anchor",
      `20:${"0".repeat(64)}`,
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(
      /^chain broken at sequence 20: anchor 20: the journal holds hash/m,
    );
    const usage = await runCli(["events", "verify", "-c", config, "--anchor", "20"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("is not SEQ:HASH");
  });

  it("exits 1 naming the first bad sequence of a journal changed by hand", async () => {
    const db = new DatabaseSync(journalPath(data));
    const row = db.prepare("SELECT payload FROM records WHERE sequence = 33").get();
    const payload = String(row?.payload).replace('"quality":"good"', '"quality":"bad"');
    db.prepare("UPDATE records SET payload = ?, crc = ? WHERE sequence = 33").run(
      payload,
      crc32(payload),
    );
    db.close();
    const broken = await runCli(["events", "verify", "-c", config]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(
      /^chain broken at sequence 33: record 33 was modified: its hash does not match its content$/m,
    );
    // --from past the damage: the rest is intact
    const rest = await runCli(["events", "verify", "-c", config, "--from", "34"]);
    expect(rest.code, rest.stdout).toBe(0);
    expect(rest.stdout).toMatch(/chain intact: 17 records checked/);
  });

  it("says where it looked when there is no journal", async () => {
    const empty = join(dir, "empty.yaml");
    writeFileSync(empty, `version: 1\ngateway: { id: gw-1, data_dir: ${join(dir, "none")} }\n`);
    const missing = await runCli(["events", "verify", "-c", empty]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /no journal at .*none\/journal\.sqlite: check gateway\.data_dir/,
    );
  });
});
