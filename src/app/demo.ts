/**
 * `plc2mqtt demo`: the bundled packaging-line simulator, an embedded broker (unless one is
 * named), and the gateway with config/demo.yaml, with every event printed as it arrives on the
 * broker. The journal lives in a fresh temporary folder, removed at stop.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startModbusSimulator } from "../../simulators/modbus/index.ts";
import { loadConfig } from "../config/load.ts";
import type { GatewayConfig } from "../config/schema/root.ts";
import type { Logger } from "../lib/logger.ts";
import { packageRoot } from "../lib/package-root.ts";
import { watchTopics } from "../publish/index.ts";
import { formatEventLine } from "./demo-view.ts";
import { type EmbeddedBroker, startEmbeddedBroker } from "./embedded-broker.ts";
import { Gateway } from "./gateway.ts";

export interface DemoOptions {
  /** An external broker to publish to instead of the embedded one. */
  mqttUrl?: string;
  log: Logger;
  version: string;
  color: boolean;
  env: Record<string, string | undefined>;
  /** Where each printed line goes. */
  write: (line: string) => void;
}

export interface Demo {
  brokerUrl: string;
  simulatorPort: number;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const configPath = join(packageRoot(), "config", "demo.yaml");
  const { config } = await loadConfig(configPath, options.env);
  const simulator = await startModbusSimulator({
    port: 0,
    scenario: "packaging-line",
    tickMs: 100,
  });
  const broker: EmbeddedBroker | undefined =
    options.mqttUrl === undefined ? await startEmbeddedBroker() : undefined;
  const brokerUrl = options.mqttUrl ?? broker!.url;
  const dataDir = mkdtempSync(join(tmpdir(), "plc2mqtt-demo-"));
  const demoConfig: GatewayConfig = {
    ...config,
    gateway: { ...config.gateway, data_dir: dataDir },
    mqtt: { ...config.mqtt!, url: brokerUrl },
    devices: config.devices.map((d) =>
      d.protocol === "modbus-tcp" ? { ...d, host: "127.0.0.1", port: simulator.port } : d,
    ),
  };
  const base = demoConfig.mqtt!.base_topic;
  const watcher = await watchTopics({
    url: brokerUrl,
    topics: [`${base}/#`],
    onMessage: (_topic, payload) => {
      const line = formatEventLine(payload, { color: options.color });
      if (line) options.write(line);
    },
  });
  options.write(
    `plc2mqtt demo: simulator on 127.0.0.1:${simulator.port}, broker ${brokerUrl}, events on ${base}/# (Ctrl-C stops)`,
  );
  const gateway = await Gateway.start({
    config: demoConfig,
    log: options.log,
    version: options.version,
  });
  return {
    brokerUrl,
    simulatorPort: simulator.port,
    dataDir,
    stop: async () => {
      await gateway.stop();
      await watcher.close();
      await broker?.close();
      await simulator.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
