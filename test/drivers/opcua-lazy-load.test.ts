/**
 * What a running gateway loads of node-opcua (issue 12, memory): a Modbus-only gateway loads
 * no node-opcua package at all (the OPC UA driver loads its library on first connect), and a
 * gateway with an OPC UA device loads node-opcua's client, not the `node-opcua` umbrella with
 * its server and address space. Checked on the built CLI's `run`, as a real process, against
 * the bundled simulators, with a resolve hook that records every package the process loads
 * (opcua-loaded-packages.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { type OpcuaSimulator, startOpcuaSimulator } from "../../simulators/opcua/index.ts";
import { startDaemon } from "../service/support.ts";
import { freePort } from "../support/mosquitto.ts";
import { NSU } from "./opcua-fixture.ts";

const HOOK = join(import.meta.dirname, "opcua-loaded-packages.ts");

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "plc2mqtt-lazy-load-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function lastSequence(port: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/^plc2mqtt_journal_last_sequence (\S+)$/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0; // not listening yet
  }
}

/**
 * Runs the gateway with these devices until it journaled `events` events (the device was read
 * and its values went through the engine), stops it, and returns the packages it loaded.
 */
async function loadedBy(name: string, devices: string, events: number): Promise<string[]> {
  const http = await freePort();
  const brokerPort = await freePort(); // no broker: the journal keeps the events
  const config = join(dir, `${name}.yaml`);
  const out = join(dir, `${name}.loaded`);
  writeFileSync(
    config,
    `version: 1
gateway: { id: ${name}, data_dir: ${join(dir, `${name}-data`)} }
mqtt: { url: "mqtt://127.0.0.1:${brokerPort}", reconnect_min: 1s, reconnect_max: 1s }
http: { listen: "127.0.0.1:${http}" }
devices:
${devices}`,
  );
  const daemon = startDaemon(["run", "-c", config], {
    nodeArgs: ["--import", HOOK],
    env: { LOADED_PACKAGES_OUT: out },
  });
  try {
    const deadline = Date.now() + 30_000;
    while ((await lastSequence(http)) < events) {
      if (Date.now() > deadline || daemon.child.exitCode !== null)
        throw new Error(
          `no ${events} events journaled: ${daemon.stdout().slice(-1500)}${daemon.stderr()}`,
        );
      await sleep(100);
    }
    expect(await daemon.stop()).toBe(0);
  } finally {
    await daemon.kill();
  }
  return readFileSync(out, "utf8").split("\n");
}

describe("what a running gateway loads of node-opcua", () => {
  let modbus: ModbusSimulator;
  let opcua: OpcuaSimulator;
  beforeAll(async () => {
    modbus = await startModbusSimulator({ port: 0 });
    opcua = await startOpcuaSimulator({ pkiDir: join(dir, "sim-pki") });
  });
  afterAll(async () => {
    await modbus?.close();
    await opcua?.close();
  });

  it("a Modbus-only gateway loads no node-opcua package", async () => {
    const loaded = await loadedBy(
      "modbus-only",
      `  - id: press
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${modbus.port}
    poll_interval: 100ms
    tags:
      - { name: r0, address: HR0, type: uint16 }
      - { name: r1, address: HR1, type: uint16 }
`,
      2,
    );
    expect(loaded).toContain("mqtt"); // the hook saw what the gateway loaded
    expect(loaded.filter((p) => p.startsWith("node-opcua"))).toEqual([]);
  }, 60_000);

  it("an OPC UA gateway loads node-opcua's client, not the umbrella, server or address space", async () => {
    const loaded = await loadedBy(
      "opcua",
      `  - id: stand
    protocol: opcua
    endpoint: ${opcua.endpointUrl}
    security: { mode: None }
    tags:
      - { name: m1, node: "${NSU}Measurement1", type: double }
      - { name: batch, node: "${NSU}BatchId", type: string }
`,
      2,
    );
    expect(loaded).toContain("node-opcua-client");
    expect(loaded).toContain("node-opcua-certificate-manager");
    for (const unused of [
      "node-opcua",
      "node-opcua-server",
      "node-opcua-address-space",
      "node-opcua-nodesets",
    ]) {
      expect(loaded, unused).not.toContain(unused);
    }
  }, 60_000);
});
