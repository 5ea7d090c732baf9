/**
 * Point 6 (issue 13): a test of the house check. Each way around test/architecture/rules.ts
 * the issue names (and a few more) is written as a small source tree on disk, collected like
 * the real tree, and must be reported, by file, with a message that names the fault; harmless
 * look-alikes must not be.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { collect, violations } from "./rules.ts";

const tmp = mkdtempSync(join(tmpdir(), "plc2mqtt-arch-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const FACES: Record<string, string> = {
  "src/publish/index.ts":
    '/** The publisher\'s public face. */\nexport { watchTopics } from "./watch.ts";\n',
  "src/publish/watch.ts": "export const watchTopics = 1;\n",
  "src/journal/index.ts":
    '/** The journal\'s public face. */\nexport { openJournalReader } from "./reader.ts";\n',
  "src/journal/reader.ts": "export const openJournalReader = 1;\n",
  "src/lib/errors.ts": "export class GatewayError extends Error {}\n",
};

let trees = 0;
/** Writes the files (plus the public faces) as a tree and returns what the checks report. */
function check(files: Record<string, string>): string[] {
  const root = join(tmp, `tree-${trees++}`);
  for (const [path, text] of Object.entries({ ...FACES, ...files })) {
    mkdirSync(join(root, dirname(path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return violations(collect(root, ["src"]));
}

describe("point 6: the house check catches each evasion", () => {
  it.each([
    [
      "a named import from node:process",
      'import { env } from "node:process";\nexport const e = env;',
    ],
    [
      "a default import from process",
      'import process from "process";\nexport const e = process.env;',
    ],
    ["a namespace import", 'import * as proc from "node:process";\nexport const e = proc.env;'],
    ["a dynamic import", 'export const e = (await import("node:process")).env;'],
    ["a re-export", 'export { env } from "node:process";'],
    [
      "a require",
      'import { createRequire } from "node:module";\nexport const e = createRequire(import.meta.url)("process").env;',
    ],
    ["a plain require", 'export const e = require("process").env;'],
    ["destructuring the global", "const { env } = process;\nexport const e = env;"],
    ["an alias of the global", "const p = process;\nexport const e = p.env;"],
    ["the global passed on", "export const e = Object.keys(process);"],
    ["globalThis.process", "export const e = globalThis.process.env;"],
    ["globalThis['process']", 'export const e = globalThis["process"].env;'],
    ["Reflect.get", 'export const e = Reflect.get(globalThis, "process");'],
    ["process inside a template expression", "export const e = `${process.pid}`;"],
  ])("%s outside cli/ and app/", (_name, text) => {
    expect(check({ "src/engine/leak.ts": text })).toEqual([
      "src/engine/leak.ts touches process: only cli/ and app/ may",
    ]);
  });

  it("leaves look-alikes alone: comments, strings, members and keys named process", () => {
    const text = [
      "// process.env is read by cli/ only",
      "/* const { env } = process; */",
      'export const a = "process.env";',
      "export const b = `another process: ${1}`;",
      "export const c = (child: { process: number }) => child.process;",
      "export const d = { process: 1 };",
      "export const r = /[\"'`]process/;",
    ].join("\n");
    expect(check({ "src/engine/ok.ts": text })).toEqual([]);
    expect(
      check({ "src/app/env.ts": 'import { env } from "node:process";\nexport { env };' }),
    ).toEqual([]);
  });

  it("checks files directly under src/ (only main.ts belongs there)", () => {
    const found = check({
      "src/main.ts": 'await import("./cli/program.ts");\n',
      "src/cli/program.ts": "export const run = () => process.exitCode;\n",
      "src/helpers.ts": "export const e = process.env;\n",
    });
    expect(found).toEqual([
      "src/helpers.ts sits directly under src/, where only main.ts belongs: move it into the layer it serves",
      "src/helpers.ts touches process: only cli/ and app/ may",
    ]);
  });

  it("checks main.ts's dynamic import like any import", () => {
    expect(
      check({ "src/main.ts": 'await import("./app/gateway.ts");\n', "src/app/gateway.ts": "" }),
    ).toEqual(["src/main.ts (main) must not import src/app/gateway.ts (app)"]);
  });

  it("names a new top-level folder instead of throwing", () => {
    const found = check({
      "src/plugins/x.ts": 'import { y } from "../journal/reader.ts";\nexport const x = y;\n',
      "src/app/uses.ts": 'import { x } from "../plugins/x.ts";\nexport const u = x;\n',
    });
    expect(found).toEqual([
      "src/plugins/x.ts is in src/plugins/, a folder that is no layer of STYLE.md: name its place in the direction (test/architecture/rules.ts ALLOWED) or move the file",
      "src/plugins/x.ts imports src/journal/reader.ts: other folders use src/journal/ through its public face src/journal/index.ts",
    ]);
  });

  it("holds other folders to the public faces of publish/ and journal/", () => {
    const found = check({
      "src/app/demo.ts":
        'import { watchTopics } from "../publish/watch.ts";\nexport const w = watchTopics;\n',
      "src/cli/events.ts":
        'export { openJournalReader } from "../journal/reader.ts";\nexport type { T } from "../journal/types.ts";\n',
      "src/journal/types.ts": "export type T = 1;\n",
      "src/app/fine.ts":
        'import { watchTopics } from "../publish/index.ts";\nimport { openJournalReader } from "../journal/index.ts";\nexport const f = [watchTopics, openJournalReader];\n',
    });
    expect(found).toEqual([
      "src/app/demo.ts imports src/publish/watch.ts: other folders use src/publish/ through its public face src/publish/index.ts",
      "src/cli/events.ts imports src/journal/reader.ts: other folders use src/journal/ through its public face src/journal/index.ts",
      "src/cli/events.ts imports src/journal/types.ts: other folders use src/journal/ through its public face src/journal/index.ts",
    ]);
  });

  it("lets a folder's own files import each other past its index.ts", () => {
    expect(
      check({
        "src/journal/journal.ts":
          'import { openJournalReader } from "./reader.ts";\nexport const j = openJournalReader;\n',
      }),
    ).toEqual([]);
  });
});
