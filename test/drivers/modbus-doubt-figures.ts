/**
 * Figures for issue 11.1, run by hand (not part of `npm test`):
 *
 *   node test/drivers/modbus-doubt-figures.ts [copies|soak] [seconds] [rtu-over-tcp|tcp]
 *
 * The device: 8 one-register tags 300 registers apart, each holding its own value,
 * polled every 100 ms with request_timeout 200 ms, over RTU over TCP; the device answers in
 * 10 ms and repeats 2.7 % of its replies 4-9 ms later (`copies`), or, `soak`, answers in
 * 5-20 ms with every fault kind at once (copies, late, torn, dropped, junk replies, and an
 * unsolicited frame every second). Runs the real DriverRunner, prints one JSON line: requests
 * made and configured per second, readings good and bad, good readings holding another
 * register's value (must be 0), samples that put readings in doubt, and the faults applied.
 */
import { startModbusSimulator } from "../../simulators/modbus/index.ts";
import { DriverRunner } from "../../src/app/driver-runner.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";

const [scenario = "copies", secondsArg = "45", framing = "rtu-over-tcp"] = process.argv.slice(2);
const seconds = Number(secondsArg);
const TAGS = Array.from({ length: 8 }, (_, i) => ({ name: `t${i}`, address: `HR${i * 300}` }));
const own = (tag: string) => 1000 + Number(tag.slice(1));

const sim = await startModbusSimulator(
  framing === "tcp" ? { port: 0 } : { port: 0, framing: "rtu-over-tcp", units: [1] },
);
for (const tag of TAGS) sim.setRegisters(1, tag.address, [own(tag.name)]);
const { faults } = sim;
let injector: NodeJS.Timeout | undefined;
if (scenario === "soak") {
  faults.turnaround([5, 20]);
  faults.duplicate([4, 9], { probability: 0.05 });
  faults.delay([250, 380], { probability: 0.02 });
  faults.torn([2, 8], { probability: 0.03 });
  faults.silence({ probability: 0.02 });
  faults.malformed("garbage", { probability: 0.02 });
  faults.malformed("byte-count-mismatch", { probability: 0.01 });
  injector = setInterval(() => sim.inject({ unitId: 1, functionCode: 3, values: [4242] }), 1000);
} else {
  faults.turnaround(10);
  faults.duplicate([4, 9], { probability: 0.027 });
}

const samples: TagSample[] = [];
const runner = new DriverRunner({
  driver: createDriver(
    deviceSchema.parse({
      id: "meters",
      protocol: framing === "tcp" ? "modbus-tcp" : "modbus-rtu-over-tcp",
      host: "127.0.0.1",
      port: sim.port,
      poll_interval: "100ms",
      request_timeout: "200ms",
      tags: TAGS,
    }),
  ),
  log: silentLogger(),
  onSamples: (s) => samples.push(...s),
  reconnect: { minMs: 100, maxMs: 1000 },
});
runner.start();
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
await runner.stop();
clearInterval(injector);
const requests = sim.requests.length;
await sim.close();

const good = samples.filter((s) => s.quality === "good");
const wrong = good.filter((s) => s.value !== own(s.tag));
const doubts = samples.filter((s) => s.reasonCode === "MODBUS_REPLY_IN_DOUBT");
const bad = samples.filter((s) => s.quality !== "good");
// a wrong good reading is "followed" when a doubt sample of its tag comes before its next good
const unfollowed = wrong.filter((w) => {
  const after = samples.slice(samples.indexOf(w) + 1).filter((s) => s.tag === w.tag);
  const next = after.findIndex((s) => s.quality === "good");
  return !after
    .slice(0, next === -1 ? undefined : next)
    .some((s) => s.reasonCode === "MODBUS_REPLY_IN_DOUBT");
});
const byReason: Record<string, number> = {};
for (const s of bad) {
  const key = s.reasonCode ?? (s.reason ?? "").replace(/.* failed: /, "").replace(/\d+/g, "N");
  byReason[key] = (byReason[key] ?? 0) + 1;
}
const { turnaround: _t, ...applied } = faults.applied;
const faultCount = Object.values(applied).reduce((a, b) => a + b, 0) + (injector ? seconds : 0);
process.stdout.write(
  `${JSON.stringify({
    scenario,
    framing,
    seconds,
    load: (await import("node:os")).loadavg()[0],
    requests_per_s: Number((requests / seconds).toFixed(1)),
    configured_per_s: 80,
    readings: samples.length - doubts.length,
    good: good.length,
    wrong_good: wrong.length,
    wrong_good_not_followed_by_doubt: unfollowed.length,
    bad_readings: bad.length - doubts.length,
    doubt_samples: doubts.length,
    faults: { ...applied, unsolicited: injector ? seconds : 0 },
    readings_in_doubt_per_fault: Number((bad.length / Math.max(1, faultCount)).toFixed(2)),
    bad_by_reason: byReason,
  })}\n`,
);
