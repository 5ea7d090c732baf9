/**
 * Point 6 (issue 13): "nothing is skipped silently" (README). No test file may skip, or run
 * only, conditionally: a missing tool fails its test with the install command instead.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const SKIP_RE =
  /\b(?:it|test|describe|suite|bench)\s*\.\s*(?:skip|skipIf|runIf|todo|only)\b|\b(?:ctx|context|t)\s*\.\s*skip\s*\(/;

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...testFiles(rel));
    else if (/\.(test|chaos)\.ts$/.test(entry.name)) out.push(rel);
  }
  return out;
}

describe("point 6: no test skips silently", () => {
  const files = ["test", "src", "simulators"].flatMap(testFiles);

  it("sees the test files", () => {
    expect(files).toContain("test/systemd/unit.test.ts");
  });

  it("has no skip, skipIf, runIf, todo or only", () => {
    const found = files.flatMap((file) =>
      readFileSync(join(root, file), "utf8")
        .split("\n")
        .flatMap((line, i) => (SKIP_RE.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(found).toEqual([]);
  });
});
