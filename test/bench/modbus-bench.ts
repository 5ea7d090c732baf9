/**
 * Modbus benchmarks: the simulator's answer time against modbus-serial's own ServerTCP under
 * the same raw client, and the driver's poll throughput at 10,000 tags. Ratios come from the
 * same run on the same machine.
 */
import { createConnection, type Socket } from "node:net";
import modbusSerial from "modbus-serial";
import { startModbusSimulator } from "../../simulators/modbus/index.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { startHelper } from "./e2e/child.ts";
import { cpuSeconds } from "./e2e/proc.ts";
import type { BenchResult } from "./result.ts";

/** Sends `count` read-holding-registers requests one after another; returns each round trip in µs. */
async function roundTrips(port: number, count: number): Promise<number[]> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = createConnection({ host: "127.0.0.1", port, noDelay: true }, () => resolve(s));
    s.once("error", reject);
  });
  const times: number[] = [];
  let buffered = Buffer.alloc(0);
  let waiting: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (buffered.length >= 6 && buffered.length >= 6 + buffered.readUInt16BE(4)) {
      buffered = buffered.subarray(6 + buffered.readUInt16BE(4));
      waiting?.();
    }
  });
  for (let i = 0; i < count; i++) {
    const request = Buffer.from([(i >> 8) & 0xff, i & 0xff, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10]);
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      waiting = resolve;
      socket.write(request);
    });
    times.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  socket.destroy();
  return times;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function summarize(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return { mean, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

export async function simulatorLatency(count = 5000): Promise<BenchResult[]> {
  const sim = await startModbusSimulator({ port: 0 });
  const ours = summarize(await roundTrips(sim.port, count));
  await sim.close();

  const ServerTCP = modbusSerial.ServerTCP;
  const vector = { getHoldingRegister: (addr: number) => addr };
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const reference = new ServerTCP(vector, { host: "127.0.0.1", port, unitID: 1 });
  await new Promise<void>((resolve) => reference.on("initialized", () => resolve()));
  const theirs = summarize(await roundTrips(port, Math.min(count, 1000)));
  await new Promise<void>((resolve) => reference.close(() => resolve()));

  return [
    { bench: "modbus.simulator.round_trip", metric: "mean", value: ours.mean, unit: "us" },
    { bench: "modbus.simulator.round_trip", metric: "p99", value: ours.p99, unit: "us" },
    { bench: "modbus.serial_servertcp.round_trip", metric: "mean", value: theirs.mean, unit: "us" },
    {
      bench: "modbus.simulator.speedup_vs_servertcp",
      metric: "ratio",
      value: theirs.mean / ours.mean,
      unit: "x",
      target: "simulator mean well under 1 ms (1000 us)",
      pass: ours.mean < 1000,
    },
  ];
}

export async function driverThroughput(polls = 20): Promise<BenchResult[]> {
  const sim = await startModbusSimulator({ port: 0 });
  const tags = Array.from({ length: 10_000 }, (_, i) => ({
    name: `t${i}`,
    address: `HR${i}`,
    type: "uint16",
  }));
  const results: BenchResult[] = [];
  const rates: Record<number, number> = {};
  for (const inFlight of [1, 4]) {
    const device = deviceSchema.parse({
      id: "bench",
      protocol: "modbus-tcp",
      host: "127.0.0.1",
      port: sim.port,
      max_in_flight: inFlight,
      tags,
    });
    const driver = createDriver(device);
    const ctx = { signal: new AbortController().signal, log: silentLogger() };
    await driver.connect(ctx);
    await driver.read!(ctx);
    const start = performance.now();
    for (let i = 0; i < polls; i++) await driver.read!(ctx);
    const seconds = (performance.now() - start) / 1000;
    await driver.close();
    rates[inFlight] = (polls * 10_000) / seconds;
    results.push({
      bench: "modbus.driver.poll_10000_tags",
      metric: `tags_per_s_in_flight_${inFlight}`,
      value: rates[inFlight]!,
      unit: "tags/s",
    });
  }
  await sim.close();
  results.push({
    bench: "modbus.driver.pipelining",
    metric: "ratio_in_flight_4_vs_1",
    value: rates[4]! / rates[1]!,
    unit: "x",
  });
  return results;
}

/**
 * Whether the bench's Modbus load source (the bundled simulator in its own process, 10,000
 * registers all changing every 100 ms) can serve what the gateway is configured to ask: 800
 * read-holding requests of 125 registers a second. A raw client keeps `window` such requests
 * in flight for `seconds`; the rate and the source's CPU say how much headroom there is.
 */
export async function loadSourceCapacity(seconds = 2, window = 8): Promise<BenchResult[]> {
  const load = await startHelper<{ port: number; pid: number }>("modbus-load", [
    "--registers",
    "10000",
  ]);
  try {
    const socket: Socket = await new Promise((resolve, reject) => {
      const s = createConnection({ host: "127.0.0.1", port: load.ready.port, noDelay: true }, () =>
        resolve(s),
      );
      s.once("error", reject);
    });
    let answered = 0;
    let sent = 0;
    let buffered = Buffer.alloc(0);
    const until = performance.now() + seconds * 1000;
    const send = () => {
      const start = ((sent % 80) * 125) & 0xffff;
      const id = sent++ & 0xffff;
      socket.write(
        Buffer.from([id >> 8, id & 255, 0, 0, 0, 6, 1, 3, start >> 8, start & 255, 0, 125]),
      );
    };
    const cpu0 = cpuSeconds(load.pid) ?? 0;
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 6 && buffered.length >= 6 + buffered.readUInt16BE(4)) {
          buffered = buffered.subarray(6 + buffered.readUInt16BE(4));
          answered++;
          if (performance.now() < until) send();
          else if (answered === sent) resolve();
        }
      });
      for (let i = 0; i < window; i++) send();
    });
    const wall = (performance.now() - t0) / 1000;
    const cpu = ((cpuSeconds(load.pid) ?? cpu0) - cpu0) / wall;
    socket.destroy();
    const rate = answered / wall;
    return [
      {
        bench: "modbus.load_source",
        metric: "requests_per_s_125_registers",
        value: rate,
        unit: "requests/s",
      },
      {
        bench: "modbus.load_source",
        metric: "cpu_pct_at_capacity",
        value: cpu * 100,
        unit: "% of one core",
      },
      {
        bench: "modbus.load_source",
        metric: "headroom_vs_800_configured",
        value: rate / 800,
        unit: "x",
        target:
          "the load source serves at least 5x the 800 requests/s the 10,000-register scenario asks",
        pass: rate >= 5 * 800,
      },
    ];
  } finally {
    await load.stop();
  }
}
