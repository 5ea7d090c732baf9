/**
 * Point 7 (issue 13): on a Node.js older than 24 the built entry says what is needed in one
 * line and exits 1, before loading anything that needs Node 24 (node:sqlite). Run under the
 * machine's own older node (/usr/bin/node, Node 20 on Debian 12) when there is one, and always
 * under this node told it is 20.1.0 (a preload that sets process.versions.node).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CLI, ROOT, runCli } from "../support/cli.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runNode(node: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(node, [...args], { cwd: ROOT, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const PRETEND_20 =
  'data:text/javascript,Object.defineProperty(process,"versions",{value:{...process.versions,node:"20.1.0"}});';

/** The ways to run the entry on an old Node: [what, node, args before the entry, its version]. */
async function oldNodes(): Promise<[string, string, string[], string][]> {
  const runs: [string, string, string[], string][] = [
    ["this node, told it is 20.1.0", process.execPath, ["--import", PRETEND_20], "20.1.0"],
  ];
  if (existsSync("/usr/bin/node")) {
    const version = (await runNode("/usr/bin/node", ["-p", "process.versions.node"])).stdout.trim();
    if (Number(version.split(".")[0]) < 24)
      runs.push(["/usr/bin/node", "/usr/bin/node", [], version]);
  }
  return runs;
}

describe("point 7: the entry checks the Node.js version first", () => {
  it("prints one line and exits 1 on Node older than 24, even for --help", async () => {
    const runs = await oldNodes();
    expect(runs.length).toBeGreaterThanOrEqual(1);
    for (const [what, node, pre, version] of runs) {
      for (const args of [["--help"], ["validate", "-c", "config/demo.yaml"]]) {
        const result = await runNode(node, [...pre, CLI, ...args]);
        expect(result, what).toEqual({
          code: 1,
          stdout: "",
          stderr: `plc2mqtt needs Node.js 24 or later (found ${version})\n`,
        });
      }
    }
  });

  it("runs the CLI on Node 24", async () => {
    const result = await runCli(["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Usage: plc2mqtt");
  });
});
