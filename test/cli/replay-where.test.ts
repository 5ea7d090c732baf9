/**
 * Issue 14: `plc2mqtt replay` shares the filters of `events`, --where included: a dry run of a
 * batch's published events sends exactly those (built CLI, a real journal).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import { event, options } from "../journal/helpers.ts";
import { runCli } from "../support/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-replay-where-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("replays only the events --where matches", async () => {
  const config = join(dir, "gateway.yaml");
  writeFileSync(config, `version: 1\ngateway: { id: gw-1, data_dir: ${join(dir, "data")} }\n`);
  const journal = await openJournal(options(join(dir, "data"), { integrityCheck: false }));
  const batch = (id: string) => ({ context: { batch_id: id } });
  const records = await journal.append([
    event(batch("B-1")),
    event(batch("B-2")),
    event(batch("B-1")),
    event(batch("B-10")),
  ]);
  journal.markPublished(records.map((r) => r.sequence));
  await journal.close();

  const all = ["replay", "-c", config, "--from", "-1d", "--dry-run"];
  const { code, stdout, stderr } = await runCli([...all, "--where", "batch_id=B-1"]);
  expect(code, stderr).toBe(0);
  const sent = stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line.slice(line.indexOf(" ") + 1)) as { id: string });
  expect(sent.map((d) => d.id)).toEqual([records[0]!.id, records[2]!.id]);
  expect(stderr).toMatch(/dry run: 2 event\(s\) would be re-published/);
});
