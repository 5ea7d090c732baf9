/**
 * CPU cost of the engine per sample at 10,000 registers (issue 12: at 10,000 registers the main
 * thread takes 100,000 samples a second through the engine): one device of `tags` plain uint16
 * telemetry tags, every value changed in every round, each round through snapshotReads() and
 * apply() as the runner and the gateway call them. Prints one JSON line: CPU microseconds per
 * sample, building the samples included, and the events made.
 *
 *   node test/bench/engine-cost.ts [rounds=200] [tags=10000]
 */
import { createEngine, type EngineDevice } from "../../src/engine/index.ts";
import type { TagSample } from "../../src/events/sample.ts";

const rounds = Number(process.argv[2] ?? 200);
const count = Number(process.argv[3] ?? 10_000);
const device = {
  id: "line1",
  asset: { site: "bench" },
  context: [],
  tags: Array.from({ length: count }, (_, i) => ({ name: `r${i}` })),
} as unknown as EngineDevice;
const engine = createEngine([device]);
let events = 0;
const start = process.cpuUsage();
for (let k = 0; k < rounds; k++) {
  const samples: TagSample[] = [];
  for (let i = 0; i < count; i++) {
    samples.push({
      device: "line1",
      tag: `r${i}`,
      value: (k + i) & 0xffff,
      quality: "good",
      readTime: 1e12 + k * 100,
    });
  }
  engine.snapshotReads(samples);
  events += engine.apply(samples, 1e12 + k * 100).length;
}
const used = process.cpuUsage(start);
process.stdout.write(
  `${JSON.stringify({
    bench: "engine-cost",
    tags: count,
    rounds,
    events,
    us_per_sample: Number(((used.user + used.system) / (rounds * count)).toFixed(3)),
  })}\n`,
);
