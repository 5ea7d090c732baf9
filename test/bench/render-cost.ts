/**
 * CPU cost of rendering one telemetry event's CloudEvents JSON (render-fast.ts) the way the
 * journal renders a poll's events: runs of `per` events sharing one time, as one poll's events
 * do. Prints one JSON line: CPU microseconds per event, the sequence and id made included.
 *
 *   node test/bench/render-cost.ts [events=400000] [per=1000]
 */
import { fastRenderer } from "../../src/events/render-fast.ts";
import type { GatewayEvent } from "../../src/events/types.ts";

const total = Number(process.argv[2] ?? 400_000);
const per = Number(process.argv[3] ?? 1000);
const render = fastRenderer("bench-1");
const asset = Object.freeze({ site: "bench" });
const poll: GatewayEvent[] = Array.from({ length: per }, (_, i) => ({
  type: "plc2mqtt.telemetry",
  device: "line1",
  subject: `r${i}`,
  time: 0,
  data: { previous: i, quality: "good", reason: "change", value: i + 1 },
  topicClass: "telemetry",
  asset,
}));
let time = 1_765_000_000_000;
let sequence = 0;
let bytes = 0;
const start = process.cpuUsage();
while (sequence < total) {
  time += 100;
  for (const event of poll) {
    event.time = time;
    sequence++;
    bytes += render(event, BigInt(sequence), `bench-${sequence}`).length;
  }
}
const used = process.cpuUsage(start);
console.log(
  JSON.stringify({
    events: sequence,
    per,
    cpu_us_per_event: +((used.user + used.system) / sequence).toFixed(3),
    bytes_per_event: Math.round(bytes / sequence),
  }),
);
