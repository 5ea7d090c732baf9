/**
 * Table-driven config cases: each test/fixtures/config/<case>.yaml is loaded for real and its
 * issues compared with <case>.expected.txt, one `line:col: path: message-substring` per
 * expected issue in order (`#` lines are comments; no issue lines = the file is valid).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, type ConfigIssue } from "../../src/config/errors.ts";
import { loadConfig } from "../../src/config/load.ts";
import { FIXTURE_DIR, FIXTURE_ENV, FIXTURE_SECRETS } from "./fixture-env.ts";

interface Expected {
  where: string;
  message: string;
}

function readExpected(name: string): Expected[] {
  const text = readFileSync(join(FIXTURE_DIR, `${name}.expected.txt`), "utf8");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => {
      const match = /^(\d+:\d+: [^ ]*): (.+)$/.exec(line);
      if (!match) throw new Error(`${name}.expected.txt: cannot parse ${JSON.stringify(line)}`);
      return { where: match[1]!, message: match[2]! };
    });
}

async function issuesOf(file: string): Promise<readonly ConfigIssue[]> {
  try {
    await loadConfig(file, FIXTURE_ENV);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
}

const cases = readdirSync(FIXTURE_DIR)
  .filter((name) => name.endsWith(".yaml"))
  .map((name) => name.slice(0, -".yaml".length))
  .sort();

describe("config fixtures", () => {
  it("has the cases the contract names", () => {
    expect(cases.length).toBeGreaterThanOrEqual(17);
  });

  it.each(cases)("%s", async (name) => {
    const file = join(FIXTURE_DIR, `${name}.yaml`);
    const expected = readExpected(name);
    const issues = await issuesOf(file);
    for (const issue of issues) expect(issue.file).toBe(file);
    // Show each actual issue as the expected line it matches, or in full when it does not.
    const actual = issues.map((issue, i) => {
      const where = `${issue.line}:${issue.col}: ${issue.path}`;
      const want = expected[i];
      const message = want && issue.message.includes(want.message) ? want.message : issue.message;
      return `${where}: ${message}`;
    });
    expect(actual).toEqual(expected.map((e) => `${e.where}: ${e.message}`));
    for (const issue of issues) {
      for (const secret of FIXTURE_SECRETS) expect(issue.message).not.toContain(secret);
    }
  });
});
