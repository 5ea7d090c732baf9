/**
 * What a burst of QoS 1 messages costs in latency on its way through the broker, with nothing
 * in front of it (issue 12: why `spread_requests: auto` puts a poll of 1,000 tags in 2 steps).
 * Every 100 ms, `messages` messages: all at once, or in S steps spread evenly over the 100 ms.
 * mqtt.js (the gateway's MQTT library) publishes them from this process to the bench's
 * mosquitto (as the peer harness configures it), and the bench's subscriber, a process of its
 * own, measures each from its `time` (set as it is handed to mqtt.js) to its arrival. No
 * journal, no engine, no Modbus: the floor under any gateway that hands the broker a poll's
 * changes as one burst. Prints one JSON line per step count.
 *
 *   node test/bench/burst-latency.ts [messages=1000] [rounds=100] [steps=1,2,8] [size=400]
 */
import { loadavg } from "node:os";
import mqtt from "mqtt";
import { startBenchBroker } from "./e2e/broker.ts";
import { difference, quantile } from "./e2e/histogram.ts";
import { type SubSnapshot, sleep, startSubscriber, waitFor } from "./e2e/measure.ts";
import { payloadMaker } from "./load/event-payload.ts";

const messages = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 100);
const stepCounts = (process.argv[4] ?? "1,2,8").split(",").map(Number);
const size = Number(process.argv[5] ?? 400);
const PERIOD_MS = 100;

const broker = await startBenchBroker();
const sub = await startSubscriber(broker);
const client = await mqtt.connectAsync(broker.url, {
  protocolVersion: 5,
  clean: true,
  reconnectPeriod: 0,
});
const make = payloadMaker(size);

/** Publishes the rounds in `steps` steps each; resolves once the last step is handed over. */
async function publishRounds(steps: number): Promise<void> {
  const t0 = performance.now();
  for (let round = 0; round < rounds; round++) {
    for (let s = 0; s < steps; s++) {
      const due = t0 + round * PERIOD_MS + (s * PERIOD_MS) / steps;
      await sleep(Math.max(0, due - performance.now()));
      const to = Math.floor(((s + 1) * messages) / steps);
      for (let i = Math.floor((s * messages) / steps); i < to; i++)
        client.publish(`plant/bench/telemetry/r${i}`, make(i), { qos: 1 });
    }
  }
}

try {
  for (const steps of stepCounts) {
    const before = await sub.ask<SubSnapshot>("snapshot");
    await publishRounds(steps);
    const expected = before.msgs + messages * rounds;
    const all = await waitFor(
      async () => (await sub.ask<SubSnapshot>("snapshot")).msgs >= expected,
      30_000,
    );
    const after = await sub.ask<SubSnapshot>("snapshot");
    const h = difference(after.live, before.live);
    const ms = (q: number) => Number((quantile(h, q) ?? Number.NaN).toFixed(2));
    console.log(
      JSON.stringify({
        messages,
        steps,
        rounds,
        received: after.msgs - before.msgs,
        complete: all,
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        load1: Number(loadavg()[0]!.toFixed(2)),
      }),
    );
  }
} finally {
  await client.endAsync();
  await sub.stop();
  await broker.stop();
}
