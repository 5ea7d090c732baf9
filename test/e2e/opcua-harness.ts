/**
 * OPC UA end-to-end helpers: the bundled OPC UA simulator running its test-stand schedule in
 * real time, and a gateway config for it whose data_dir PKI trusts the simulator's certificate
 * (copied into trusted/certs/ as an operator would), SignAndEncrypt by default.
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OpcuaSimulator } from "../../simulators/opcua/index.ts";
import type { GatewayFiles } from "./harness.ts";

export function writeOpcuaGatewayConfig(sim: OpcuaSimulator, brokerUrl: string): GatewayFiles {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-e2e-opcua-"));
  const base = `e2e-${Math.random().toString(36).slice(2, 8)}`;
  const dataDir = join(dir, "data");
  const trusted = join(dataDir, "pki", "trusted", "certs");
  mkdirSync(trusted, { recursive: true });
  copyFileSync(sim.serverCertificateFile, join(trusted, "simulator.pem"));
  const nsu = `nsu=${sim.namespaceUri};s=TestStand.`;
  const config = join(dir, "gateway.yaml");
  writeFileSync(
    config,
    `version: 1
gateway: { id: e2e-gw, site: testsite, data_dir: ${dataDir} }
mqtt: { url: "${brokerUrl}", base_topic: ${base}, reconnect_min: 100ms, reconnect_max: 1s }
journal: { commit_interval: 20ms }
http: { listen: false, health: { topic_interval: false } }
devices:
  - id: stand
    protocol: opcua
    endpoint: ${sim.endpointUrl}
    area: test
    line: line-1
    publishing_interval: 100ms
    sampling_interval: 0ms
    reconnect_min: 100ms
    reconnect_max: 1s
    tags:
      - { name: state, node: "${nsu}MachineState", type: uint16, states: { 0: stopped, 1: running, 2: fault } }
      - { name: result, node: "${nsu}Result", type: int32 }
      - { name: serial, node: "${nsu}SerialNumber", type: string }
      - { name: depth, browse_path: /TestStand/Measurement1, type: double, unit: mm, deadband: { absolute: 0.05 } }
      - { name: curve, node: "${nsu}Curve", type: json }
      - { name: batch, node: "${nsu}BatchId", mode: poll, poll_interval: 200ms }
      - name: ready
        node: "${nsu}ResultReady"
        type: boolean
        trigger: { on: rising, event: quality.result, snapshot: [result, serial] }
`,
  );
  return { base, dir, config, dataDir };
}
