/**
 * The fault-cost benchmark of issue 13, point 8 (modbus-faults.ts), smoke-tested: a short run
 * per framing puts out one JSON line per framing and kind with the figures, and no run takes a
 * wrong value as good. It asserts no speed (the figures are for `node
 * test/bench/modbus-faults.ts`, outside `npm test`).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { ROOT } from "../support/cli.ts";

const run = promisify(execFile);

it("point 8: the fault-cost benchmark prints its figures, and no wrong value as good", async () => {
  const { stdout } = await run(
    process.execPath,
    [
      join(ROOT, "test/bench/modbus-faults.ts"),
      "--seconds",
      "1",
      "--framing",
      "tcp,rtu-over-tcp",
      "--kind",
      "garbage,late",
    ],
    { cwd: ROOT, timeout: 60_000 },
  );
  const lines = stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
  expect(lines.map((l) => `${l.framing}/${l.kind}`)).toEqual([
    "tcp/garbage",
    "tcp/late",
    "rtu-over-tcp/garbage",
    "rtu-over-tcp/late",
  ]);
  for (const line of lines) {
    expect(line.wrong_good).toBe(0);
    for (const key of ["polls_per_configured", "requests_per_configured", "good_per_configured"]) {
      expect(Number.isFinite(line[key]), key).toBe(true);
    }
    expect(line.connections).toBeGreaterThanOrEqual(1);
  }
});
