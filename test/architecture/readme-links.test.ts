/**
 * Point 7 (issue 13): the README names no file the repository does not have (it linked
 * STYLE.md, which lives outside it). Checked: every relative Markdown link, every `*.md` named
 * in code spans, and every code span that is a path under one of the repository's folders.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const FOLDERS = ["config/", "src/", "test/", "systemd/", "simulators/", ".ci/"];

/** The repository paths a Markdown text names. */
function namedPaths(markdown: string): string[] {
  const paths = new Set<string>();
  for (const m of markdown.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
    if (!/^[a-z]+:/.test(m[1]!)) paths.add(m[1]!);
  }
  for (const m of markdown.matchAll(/`([^`\s]+)`/g)) {
    const span = m[1]!.replace(/[.,:;]$/, "");
    if (/[<>*{}$]/.test(span) || span.startsWith("/")) continue;
    if (/^[\w./-]+\.md$/.test(span) || FOLDERS.some((folder) => span.startsWith(folder))) {
      paths.add(span);
    }
  }
  return [...paths].sort();
}

describe("point 7: the README names only files that exist", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const named = namedPaths(readme);

  it("finds the files it links", () => {
    expect(named).toContain("config/example.yaml");
    expect(named).toContain("systemd/README.md");
    expect(namedPaths("see `STYLE.md` and [x](docs/a.md)")).toEqual(["STYLE.md", "docs/a.md"]);
  });

  it("links and names no missing file", () => {
    expect(named.filter((path) => !existsSync(join(root, path)))).toEqual([]);
  });
});
