/**
 * `npm run bench`: runs every benchmark and prints one JSON object per line on stdout
 * (machine-readable); exits 1 when a benchmark with a target misses it. Numbers are for
 * comparing within one run on one machine, never for timed unit tests.
 */
import { journalThroughput } from "./journal-bench.ts";
import { driverThroughput, simulatorLatency } from "./modbus-bench.ts";
import { publishThroughput } from "./publish-bench.ts";
import type { BenchResult } from "./result.ts";

const suites: [string, () => Promise<BenchResult[]>][] = [
  ["simulator latency", () => simulatorLatency()],
  ["driver throughput", () => driverThroughput()],
  ["journal throughput", () => journalThroughput()],
  ["journal to broker", () => publishThroughput()],
];

let failed = false;
for (const [name, run] of suites) {
  process.stderr.write(`bench: ${name}...\n`);
  for (const result of await run()) {
    process.stdout.write(
      `${JSON.stringify({ ...result, value: Number(result.value.toPrecision(6)) })}\n`,
    );
    if (result.pass === false) failed = true;
  }
}
process.exitCode = failed ? 1 : 0;
