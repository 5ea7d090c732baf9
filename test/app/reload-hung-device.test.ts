/**
 * Issue 13.5: a reload waits on a device's stop only so long. The OPC UA simulator runs in a
 * process of its own and really hangs (SIGSTOP): closing the session waits for an answer that
 * never comes (request_timeout 10 min). A reload that removes that device and adds a Modbus
 * one must finish anyway, name the device that hung in the log, and start the new device;
 * shutdown stays bounded too.
 */
import "node-opcua";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { Gateway } from "../../src/app/gateway.ts";
import { parseConfig } from "../../src/config/load.ts";
import { withTimeout } from "../../src/lib/abort.ts";
import { NSU } from "../drivers/opcua-fixture.ts";
import { eventually } from "../support/resources.ts";

const SIMULATOR = join(import.meta.dirname, "../drivers/opcua-simulator-process.ts");

let dir: string;
let child: ChildProcess | undefined;
let modbus: ModbusSimulator;

async function startSimulator(pkiDir: string): Promise<string> {
  const proc = spawn(process.execPath, [SIMULATOR, pkiDir], { stdio: ["pipe", "pipe", "inherit"] });
  child = proc;
  const lines = createInterface({ input: proc.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    proc.once("exit", (code) => reject(new Error(`the simulator process exited (${code})`)));
  });
  return (JSON.parse(first) as { endpointUrl: string }).endpointUrl;
}

async function stopSimulator(): Promise<void> {
  const proc = child;
  child = undefined;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGCONT");
  proc.stdin?.end();
  const killer = setTimeout(() => proc.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(killer);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "plc2mqtt-reload-hung-"));
  modbus = await startModbusSimulator({ port: 0, recordRequests: false });
});
afterAll(async () => {
  await stopSimulator();
  await modbus?.close();
  rmSync(dir, { recursive: true, force: true });
});

function configText(endpoint: string, devices: "opcua" | "modbus"): string {
  const head = `version: 1
gateway: { id: hung-gw, data_dir: ${join(dir, "data")} }
journal: { commit_interval: 10ms }
http: { listen: false }
devices:
`;
  if (devices === "opcua")
    return `${head}  - id: ua
    protocol: opcua
    endpoint: ${endpoint}
    security: { mode: None }
    publishing_interval: 100ms
    request_timeout: 10m
    session_timeout: 10m
    tags:
      - { name: depth, node: "${NSU}Measurement1", type: double }
`;
  return `${head}  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${modbus.port}
    poll_interval: 50ms
    tags:
      - { name: counter, address: HR0, type: uint16 }
`;
}

describe("reload and a device that hangs on stop", () => {
  it("point 5: a reload waits on a hung device's stop only so long, names it, and goes on", async () => {
    const endpoint = await startSimulator(join(dir, "sim"));
    const lines: Record<string, unknown>[] = [];
    const log = pino(
      { level: "info" },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const parse = (text: string) =>
      parseConfig(text, { file: join(dir, "gateway.yaml"), env: {}, baseDir: dir }).config;
    const gateway = await Gateway.start({
      config: parse(configText(endpoint, "opcua")),
      log,
      version: "0.0.0-test",
      reloadStepTimeoutMs: 2000,
    });
    const telemetry = (device: string) =>
      gateway.journal.query({ device, type: "plc2mqtt.telemetry" }).length;
    try {
      await eventually(() => telemetry("ua") > 0, 30_000, "the OPC UA device's first value");
      child!.kill("SIGSTOP"); // the server hangs: the session's close will get no answer

      const report = await withTimeout(
        gateway.reload(parse(configText(endpoint, "modbus"))),
        20_000,
        () => new Error("the reload did not finish: it waits on the hung device's stop"),
      );
      expect(report).toMatchObject({ added: ["plc"], removed: ["ua"] });
      const hung = lines.filter(
        (l) => l.msg === "device did not stop in time; the reload goes on without waiting for it",
      );
      expect(hung).toMatchObject([{ level: 50, device: "ua", timeoutMs: 2000 }]);
      await eventually(() => telemetry("plc") > 0, 15_000, "the new device's first value");
    } finally {
      // shutdown is bounded too, even with the hung runner still closing
      await withTimeout(gateway.stop(3000), 20_000, () => new Error("the gateway did not stop"));
    }
  }, 90_000);
});
