/**
 * Issue 13, point 8: what each kind of fault of a flaky Modbus device costs in polls. Run by
 * hand (not part of `npm test`, not a timed test):
 *
 *   node test/bench/modbus-faults.ts [--seconds 20] [--framing tcp,rtu-over-tcp]
 *                                    [--kind none,late,duplicate,torn,silence,garbage,all]
 *
 * The device: 8 one-register tags 300 registers apart, each holding its own value,
 * polled every 100 ms, request_timeout 200 ms, max_in_flight 4 over Modbus TCP (RTU over TCP:
 * one at a time), reconnect_min/max at their defaults; the device answers in 1-3 ms. Each kind
 * faults 3 % of the replies: `late` (250-380 ms, past the timeout), `duplicate` (a copy 0-9
 * ms after), `torn` (two pieces 2-8 ms apart), `silence` (never sent), `garbage` (8-39 random
 * bytes instead); `all` is the five at once (15 %). `torn-late` (pieces 250-380 ms apart) is
 * there too, asked for by name. Runs the real DriverRunner and prints one JSON line per
 * framing and kind: polls made / configured (runner polls of the group, and requests on the
 * wire), good readings / configured, wrong good readings (a value that is not the tag's own:
 * must be 0), TCP connections opened, disconnects the runner reported, faults applied.
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { startModbusSimulator } from "../../simulators/modbus/index.ts";
import type { FaultControl } from "../../simulators/modbus/types.ts";
import { DriverRunner } from "../../src/app/driver-runner.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";

const P = 0.03;
export const FAULT_KINDS: Record<string, (faults: FaultControl) => void> = {
  none: () => {},
  late: (f) => f.delay([250, 380], { probability: P }),
  duplicate: (f) => f.duplicate([0, 9], { probability: P }),
  torn: (f) => f.torn([2, 8], { probability: P }),
  silence: (f) => f.silence({ probability: P }),
  garbage: (f) => f.malformed("garbage", { probability: P }),
  "torn-late": (f) => f.torn([250, 380], { probability: P }),
  all: (f) => {
    for (const kind of ["late", "duplicate", "torn", "silence", "garbage"]) FAULT_KINDS[kind]!(f);
  },
};

const TAGS = Array.from({ length: 8 }, (_, i) => ({ name: `t${i}`, address: `HR${i * 300}` }));
const own = (tag: string) => 1000 + Number(tag.slice(1));
const POLL_MS = 100;

async function run(framing: string, kind: string, seconds: number) {
  const tcp = framing === "tcp";
  const sim = await startModbusSimulator(
    tcp ? { port: 0 } : { port: 0, framing: "rtu-over-tcp", units: [1] },
  );
  for (const tag of TAGS) sim.setRegisters(1, tag.address, [own(tag.name)]);
  sim.faults.turnaround([1, 3]);
  FAULT_KINDS[kind]!(sim.faults);
  const device = deviceSchema.parse({
    id: "flaky",
    protocol: tcp ? "modbus-tcp" : "modbus-rtu-over-tcp",
    host: "127.0.0.1",
    port: sim.port,
    ...(tcp ? { max_in_flight: 4 } : {}),
    poll_interval: `${POLL_MS}ms`,
    request_timeout: "200ms",
    tags: TAGS,
  });
  const samples: TagSample[] = [];
  let polls = 0;
  let disconnects = 0;
  const runner = new DriverRunner({
    driver: createDriver(device),
    log: silentLogger(),
    onSamples: (s) => samples.push(...s),
    onPoll: () => {
      polls += 1;
    },
    onStatus: (s) => {
      if (s.status !== "connected") disconnects += 1;
    },
    reconnect: { minMs: device.reconnect_min, maxMs: device.reconnect_max },
  });
  runner.start();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  await runner.stop();
  const requests = sim.requests.length;
  const connections = sim.connections;
  await sim.close();

  const configuredPolls = (seconds * 1000) / POLL_MS;
  const good = samples.filter((s) => s.quality === "good");
  const wrong = good.filter((s) => s.value !== own(s.tag));
  const bad: Record<string, number> = {};
  for (const s of samples) {
    if (s.quality === "good") continue;
    const key = values.reasons ? (s.reason ?? "").replace(/\d+/g, "N") : (s.reasonCode ?? "runner");
    bad[key] = (bad[key] ?? 0) + 1;
  }
  const { turnaround: _t, ...applied } = sim.faults.applied;
  const faultsApplied = Object.fromEntries(Object.entries(applied).filter(([, n]) => n > 0));
  return {
    framing,
    kind,
    seconds,
    load1: Number(loadavg()[0]!.toFixed(2)),
    polls_per_configured: Number((polls / configuredPolls).toFixed(3)),
    requests_per_configured: Number((requests / (configuredPolls * TAGS.length)).toFixed(3)),
    good_per_configured: Number((good.length / (configuredPolls * TAGS.length)).toFixed(3)),
    wrong_good: wrong.length,
    connections,
    disconnects_reported: disconnects,
    faults: faultsApplied,
    bad_by_code: bad,
  };
}

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    framing: { type: "string", default: "tcp,rtu-over-tcp" },
    kind: { type: "string", default: "none,late,duplicate,torn,silence,garbage,all" },
    /** Count bad readings by their reason text (digits as N) rather than by code. */
    reasons: { type: "boolean", default: false },
  },
});
for (const framing of values.framing.split(",")) {
  for (const kind of values.kind.split(",")) {
    if (!(kind in FAULT_KINDS)) throw new Error(`unknown fault kind ${kind}`);
    const result = await run(framing, kind, Number(values.seconds));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}
