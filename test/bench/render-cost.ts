/**
 * CPU cost of rendering telemetry events the way the journal renders a poll's events: runs of
 * `per` events sharing one time, as one poll's events do. Two figures, one after the other:
 * the CloudEvents JSON alone (render-fast.ts), and the journal's whole render (app/render.ts:
 * the JSON, the topic from its cache, the retain flag). Prints one JSON line: CPU microseconds
 * per event for each, the sequence and id made included.
 *
 *   node test/bench/render-cost.ts [events=400000] [per=1000]
 */
import { createRender } from "../../src/app/render.ts";
import type { GatewayConfig } from "../../src/config/schema/root.ts";
import { fastRenderer } from "../../src/events/render-fast.ts";
import type { GatewayEvent } from "../../src/events/types.ts";

const total = Number(process.argv[2] ?? 400_000);
const per = Number(process.argv[3] ?? 1000);
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

/** CPU microseconds per event, and bytes of JSON per event, of `render` over `total` events. */
function measure(render: (event: GatewayEvent, sequence: bigint, id: string) => string) {
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
  return {
    events: sequence,
    us: +((used.user + used.system) / sequence).toFixed(3),
    bytes: bytes / sequence,
  };
}

const document = measure(fastRenderer("bench-1"));
const journalRender = createRender({
  gateway: { id: "bench-1" },
  mqtt: { base_topic: "plant", topic_template: "{base}/{site}/{class}/{name}" },
} as unknown as GatewayConfig);
const whole = measure((event, sequence, id) => {
  const rendered = journalRender(event, sequence, id);
  return rendered.topic.length > 0 ? rendered.payload : "";
});
console.log(
  JSON.stringify({
    events: document.events,
    per,
    cpu_us_per_event: document.us,
    render_cpu_us_per_event: whole.us,
    bytes_per_event: Math.round(document.bytes),
  }),
);
