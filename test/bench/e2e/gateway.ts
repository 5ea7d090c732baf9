/**
 * The gateway under test: the BUILT CLI (`node dist/src/main.js run -c <config>`) as its own
 * process, configured as the peer harness configures it (../shared/peer-nodered/
 * gen-plc2mqtt.js): one uint16 tag per holding register (r<a> at HR<a>), no deadband, poll
 * 100 ms, topics plant/bench/telemetry/r<a>, max_in_flight 1000, journal defaults.
 *
 * BENCH_GATEWAY_NODE_OPTIONS, when set, is the gateway's NODE_OPTIONS (and only its): to
 * measure V8 heap flags such as `--max-semi-space-size=4` on the gateway alone.
 * BENCH_GATEWAY_OUT, when set, is a file that gets everything the gateway writes (stdout and
 * stderr), such as the lines of `--trace-gc`.
 *
 * Batching (off unless asked): `batch` in the setup, or BENCH_BATCH in the environment
 * (`npm run bench -- --batch 100` sets it): `<max_events>[,<max_delay>]`, such as `100` or
 * `500,50ms`; telemetry then goes in batches on plant/bench/telemetry/_batch.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, ROOT } from "../../support/cli.ts";

export interface GatewaySource {
  kind: "modbus" | "opcua";
  port: number;
  /** Tags r0..r(N-1) (Modbus) or d0..d(N-1) (OPC UA node nsu=urn:plc2mqtt:bench;s=d<i>). */
  tags: number;
  pollMs?: number;
  /** Modbus `spread_requests` (true, false, or a number of steps; absent: the default, auto). */
  spread?: boolean | number;
}

export interface GatewaySetup {
  dir: string;
  brokerUrl: string;
  source: GatewaySource;
  /** host:port for /healthz and /metrics; false (the default) turns them off. */
  http?: string | false;
  /** Telemetry batches: `<max_events>[,<max_delay>]`; default BENCH_BATCH, else off. */
  batch?: string;
  /** The journal's commit_interval (`10ms`); default the gateway's. */
  commitInterval?: string;
}

/** The mqtt.batch flow mapping for `spec` (`100` or `100,20ms`), or "" when off. */
export function batchConfig(spec: string | undefined): string {
  if (spec === undefined || spec === "" || spec === "off") return "";
  const [events, delay] = spec.split(",");
  if (!/^\d+$/.test(events ?? "") || (delay !== undefined && !/^\d+(ms|s)$/.test(delay)))
    throw new Error(`batch takes <max_events>[,<max_delay>] such as 100 or 500,50ms, not ${spec}`);
  return `, batch: { classes: [telemetry], max_events: ${events}${delay ? `, max_delay: ${delay}` : ""} }`;
}

export function writeBenchConfig(s: GatewaySetup): string {
  const file = join(s.dir, "gateway.yaml");
  const lines = [
    "version: 1",
    `gateway: { id: bench, site: bench, data_dir: ${join(s.dir, "data")} }`,
    `mqtt: { url: "${s.brokerUrl}", base_topic: plant, topic_template: "{base}/{site}/{class}/{name}", max_in_flight: 1000, reconnect_min: 100ms, reconnect_max: 1s${batchConfig(s.batch ?? process.env.BENCH_BATCH)} }`,
    `http: { listen: ${s.http === undefined || s.http === false ? "false" : s.http} }`,
    // BENCH_CONFIG: more top-level YAML, to try a setting (`journal: { commit_interval: 10ms }`)
    ...(process.env.BENCH_CONFIG ? [process.env.BENCH_CONFIG] : []),
    ...(s.commitInterval ? [`journal: { commit_interval: ${s.commitInterval} }`] : []),
    "devices:",
  ];
  if (s.source.kind === "modbus") {
    lines.push(
      "  - id: line1",
      "    protocol: modbus-tcp",
      "    host: 127.0.0.1",
      `    port: ${s.source.port}`,
      "    unit_id: 1",
      `    poll_interval: ${s.source.pollMs ?? 100}ms`,
      ...(s.source.spread !== undefined ? [`    spread_requests: ${s.source.spread}`] : []),
      "    tags:",
    );
    for (let a = 0; a < s.source.tags; a++)
      lines.push(`      - { name: r${a}, address: HR${a}, type: uint16 }`);
  } else {
    lines.push(
      "  - id: line1",
      "    protocol: opcua",
      `    endpoint: opc.tcp://127.0.0.1:${s.source.port}`,
      "    security: { mode: None }",
      "    publishing_interval: 100ms",
      "    sampling_interval: 100ms",
      "    tags:",
    );
    for (let i = 0; i < s.source.tags; i++)
      lines.push(`      - { name: d${i}, node: "nsu=urn:plc2mqtt:bench;s=d${i}", type: double }`);
  }
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

export interface RunningGateway {
  pid: number;
  startedAt: number;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

export function startGateway(config: string, env: NodeJS.ProcessEnv = {}): RunningGateway {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build`);
  const startedAt = Date.now();
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, "run", "-c", config, "--log-level", "warn", "--log-format", "json"],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        NOTIFY_SOCKET: undefined,
        WATCHDOG_USEC: undefined,
        ...(process.env.BENCH_GATEWAY_NODE_OPTIONS
          ? { NODE_OPTIONS: process.env.BENCH_GATEWAY_NODE_OPTIONS }
          : {}),
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  const copyTo = process.env.BENCH_GATEWAY_OUT;
  const keep = (d: Buffer) => {
    if (copyTo) appendFileSync(copyTo, d);
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    pid: child.pid!,
    startedAt,
    output: () => out,
    exited,
    stop: async () => {
      if (running()) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    kill: async () => {
      if (running()) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** One Prometheus sample of /metrics (the first series of that name), or undefined. */
export async function metric(httpBase: string, name: string): Promise<number | undefined> {
  const text = await metricsText(httpBase);
  return text === undefined ? undefined : metricIn(text, name);
}

/** The gateway's /metrics text, or undefined when it does not answer. */
export async function metricsText(httpBase: string): Promise<string | undefined> {
  try {
    return await (await fetch(`${httpBase}/metrics`)).text();
  } catch {
    return undefined;
  }
}

/** A sample of `name` in a /metrics text: the first one, or the first whose labels hold `labels`. */
export function metricIn(text: string, name: string, labels?: string): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^(?:\{([^}]*)\})? (\S+)$/.exec(line.slice(name.length));
    if (m && (labels === undefined || (m[1] ?? "").includes(labels))) return Number(m[2]);
  }
  return undefined;
}
