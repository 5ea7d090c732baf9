/**
 * A gateway run in-process (Gateway.start) against the bundled Modbus simulator and a real
 * mosquitto, with /healthz and /metrics on a free port, for the metrics and health tests.
 * The plant bumps HR0 every 50 ms so that events keep flowing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { Gateway } from "../../src/app/gateway.ts";
import { parseConfig } from "../../src/config/load.ts";
import { type Logger, silentLogger } from "../../src/lib/logger.ts";

export { waitUntil } from "../e2e/harness.ts";

export interface Running {
  gateway: Gateway;
  sim: ModbusSimulator;
  /** http://127.0.0.1:<port> */
  url: string;
  base: string;
  stop(): Promise<void>;
}

/**
 * `extraDevices` is YAML for more list items under `devices:`; `health` the http.health map;
 * `mqtt` more keys of the mqtt map (`retain: false`); `log` the gateway's logger (silent).
 */
export async function runGateway(opts: {
  brokerUrl: string;
  health?: string;
  extraDevices?: string;
  mqtt?: string;
  log?: Logger;
}): Promise<Running> {
  const sim = await startModbusSimulator({ port: 0 });
  sim.setRegisters(1, "HR0", [0]);
  let n = 0;
  const bump = setInterval(() => sim.setRegisters(1, "HR0", [++n & 0xffff]), 50);
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-observe-"));
  const base = `obs-${Math.random().toString(36).slice(2, 8)}`;
  const text = `version: 1
gateway: { id: obs-gw, site: testsite, data_dir: ${join(dir, "data")} }
mqtt: { url: "${opts.brokerUrl}", base_topic: ${base}, reconnect_min: 100ms, reconnect_max: 500ms${opts.mqtt ? `, ${opts.mqtt}` : ""} }
journal: { commit_interval: 10ms }
http:
  listen: 127.0.0.1:0
  health: ${opts.health ?? "{}"}
devices:
  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    poll_interval: 100ms
    reconnect_min: 100ms
    reconnect_max: 500ms
    tags:
      - { name: counter, address: HR0, type: uint16 }
      - { name: refused, address: IR0, type: uint16 }
${opts.extraDevices ?? ""}`;
  const { config } = parseConfig(text, { file: join(dir, "gateway.yaml"), env: {}, baseDir: dir });
  let gateway: Gateway;
  try {
    gateway = await Gateway.start({
      config,
      log: opts.log ?? silentLogger(),
      version: "0.0.0-test",
    });
  } catch (err) {
    clearInterval(bump);
    await sim.close();
    throw err;
  }
  const address = gateway.httpAddress;
  if (!address) throw new Error("the gateway serves no HTTP endpoint");
  return {
    gateway,
    sim,
    url: `http://127.0.0.1:${address.port}`,
    base,
    stop: async () => {
      clearInterval(bump);
      await gateway.stop();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The samples of a Prometheus text exposition: `name{labels}` -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const cut = line.lastIndexOf(" ");
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

export async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

export async function healthz(url: string): Promise<{ status: number; body: HealthBody }> {
  const res = await fetch(`${url}/healthz`);
  return { status: res.status, body: (await res.json()) as HealthBody };
}

export interface HealthBody {
  status: string;
  reasons: string[];
  mqtt?: { connected: boolean };
  devices: { id: string; status: string; problem?: string }[];
  gateway: { id: string };
}
