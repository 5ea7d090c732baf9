#!/usr/bin/env node
/**
 * The entry: checks the Node.js version, then runs the CLI. It imports nothing statically: the
 * CLI's modules need Node.js 24 (node:sqlite, ...), and an older Node would fail while loading
 * them with a stack trace instead of this one line (issue 13 point 7). Keep it that way: this
 * file must parse and run on old Node versions.
 */
const NEEDED_MAJOR = 24;
const found = process.versions.node;

if (Number(found.split(".")[0]) < NEEDED_MAJOR) {
  process.stderr.write(`plc2mqtt needs Node.js ${NEEDED_MAJOR} or later (found ${found})\n`);
  process.exitCode = 1;
} else {
  // the daemon's V8 heap is set before any of its modules is loaded (cli/heap-budget.ts)
  if (process.argv[2] === "run") (await import("./cli/heap-budget.ts")).applyHeapBudget();
  const { runCli } = await import("./cli/program.ts");
  await runCli(process.argv);
}
