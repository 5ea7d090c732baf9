/**
 * The ceiling of the parts: mqtt.js (the gateway's MQTT library) publishing QoS 1, MQTT 5, as
 * fast as the broker acknowledges, with `--window` messages in flight, to the same broker and
 * the same subscriber the gateway's scenario uses. Messages look like the gateway's events
 * (a CloudEvents document of the size asked for, `time` set when it is handed to mqtt.js), so
 * the subscriber measures them the same way. No journal, no engine: what the gateway's
 * delivered rate is compared with.
 */

import { parseArgs } from "node:util";
import mqtt from "mqtt";
import { serve } from "../e2e/child.ts";
import { payloadMaker } from "./event-payload.ts";

const { values: opts } = parseArgs({
  options: { url: { type: "string" }, window: { type: "string", default: "1000" } },
});
const WINDOW = Number(opts.window);

const client = await mqtt.connectAsync(opts.url!, {
  protocolVersion: 5,
  clean: true,
  clientId: `bench-ceiling-${process.pid}`,
  reconnectPeriod: 0,
});
const socket = (client as unknown as { stream?: { setNoDelay?: (b: boolean) => void } }).stream;
socket?.setNoDelay?.(true);

async function run(
  seconds: number,
  size: number,
): Promise<{ sent: number; acked: number; cpuPct: number }> {
  const make = payloadMaker(size);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  let sent = 0;
  let acked = 0;
  let inFlight = 0;
  await new Promise<void>((resolve) => {
    const top = () => {
      while (inFlight < WINDOW && performance.now() < until) {
        const i = sent++;
        inFlight++;
        client.publish(`plant/bench/telemetry/r${i % 10_000}`, make(i), { qos: 1 }, () => {
          acked++;
          inFlight--;
          if (inFlight === 0 && performance.now() >= until) resolve();
          else if (inFlight < WINDOW / 2) top();
        });
      }
      if (inFlight === 0) resolve();
    };
    top();
  });
  const used = process.cpuUsage(cpu0);
  const wall = (performance.now() - t0) / 1000;
  return { sent, acked, cpuPct: (100 * (used.user + used.system)) / 1e6 / wall };
}

serve(
  { pid: process.pid },
  (what, arg) => {
    const a = arg as { seconds: number; size: number };
    if (what === "run") return run(a.seconds, a.size);
    throw new Error(`unknown question ${what}`);
  },
  () => client.endAsync(true),
);
