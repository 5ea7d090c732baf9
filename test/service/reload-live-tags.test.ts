/**
 * Issue 13.3, end to end: the built daemon, a real mosquitto, SIGHUP. A reload that adds one
 * tag to a running device applies it on the live connection: the Modbus simulator still sees
 * one connection, the OPC UA simulator no new session (its CumulatedSessionCount, read by a
 * client of the test's own), and the engine keeps the state of the tags that did not change:
 * no new initial telemetry for them, a state's duration counted from before the reload.
 *
 * Needs the drivers' updateTags (Modbus: branch issue13-modbus-map; OPC UA: branch
 * issue13-opcua-tags): without it the driver answers "reconnect" and these tests fail.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  AttributeIds,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
} from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { type OpcuaSimulator, startOpcuaSimulator } from "../../simulators/opcua/index.ts";
import { NSU } from "../drivers/opcua-fixture.ts";
import { isWill, type Received, startSubscriber } from "../e2e/harness.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import { startDaemon, waitUntil, writeConfig } from "./support.ts";

let broker: Broker;

beforeAll(async () => {
  broker = await startMosquitto();
});
afterAll(async () => {
  await broker?.stop();
});

function head(data: string, base: string): string {
  return `version: 1
gateway: { id: live-gw, data_dir: ${data} }
mqtt: { url: "${broker.url}", base_topic: ${base}, reconnect_min: 100ms, reconnect_max: 1s }
journal: { commit_interval: 20ms }
http: { listen: false, health: { topic_interval: false } }
devices:
`;
}

const of = (messages: readonly Received[], tag: string, type: string) =>
  messages.filter(
    (m) => !isWill(m) && m.event.subject === tag && m.event.type === `plc2mqtt.${type}`,
  );

describe("reload of a tag map on the live connection", () => {
  it("point 3: Modbus: one tag added, the same connection, the other tags' state kept", async () => {
    const sim: ModbusSimulator = await startModbusSimulator({ port: 0, recordRequests: false });
    sim.setRegisters(1, "HR1", [1]); // mode: run
    sim.setRegisters(1, "HR2", [215]);
    let n = 0;
    const bump = setInterval(() => sim.setRegisters(1, "HR0", [++n & 0xffff]), 40);
    const base = `live-${Math.random().toString(36).slice(2, 8)}`;
    const device = (extra: string) => `  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    poll_interval: 50ms
    tags:
      - { name: counter, address: HR0, type: uint16 }
      - { name: mode, address: HR1, type: uint16, states: { "1": run, "2": stop } }
${extra}`;
    let text = "";
    const files = writeConfig((data) => {
      text = head(data, base);
      return text + device("");
    });
    const sub = await startSubscriber(broker.url, `${base}/#`);
    const daemon = startDaemon(["run", "-c", files.config]);
    const audits = () => daemon.lines().filter((l) => l.audit === "config reload");
    try {
      await waitUntil(
        () =>
          of(sub.messages, "counter", "telemetry").length >= 5 &&
          of(sub.messages, "mode", "state.changed").length === 1,
        20_000,
        "telemetry and the first state",
      );
      expect(sim.connections).toBe(1);

      writeFileSync(
        files.config,
        text + device("      - { name: temp, address: HR2, type: int16, scale: 0.1 }\n"),
      );
      const mark = sub.messages.length;
      daemon.child.kill("SIGHUP");
      await waitUntil(() => audits().length === 1, 15_000, "the reload's audit line");
      expect(audits()[0]).toMatchObject({ changed: ["plc"], updatedLive: ["plc"] });
      await waitUntil(
        () => of(sub.messages.slice(mark), "temp", "telemetry").length > 0,
        15_000,
        "the new tag's first value",
      );
      expect(of(sub.messages.slice(mark), "temp", "telemetry")[0]!.event.data).toMatchObject({
        value: 21.5,
        reason: "initial",
      });
      await waitUntil(
        () => of(sub.messages.slice(mark), "counter", "telemetry").length >= 5,
        15_000,
        "more of the kept tag",
      );
      sim.setRegisters(1, "HR1", [2]); // mode: stop
      await waitUntil(
        () => of(sub.messages, "mode", "state.changed").length >= 2,
        15_000,
        "the state change after the reload",
      );
      expect(sim.connections).toBe(1); // never reconnected
      const after = sub.messages.slice(mark);
      expect(
        of(after, "counter", "telemetry").filter((m) => m.event.data.reason === "initial"),
      ).toEqual([]);
      // the state was kept across the reload: no new first state, its duration goes on
      const states = of(sub.messages, "mode", "state.changed").map((m) => m.event);
      expect(states.map((e) => [e.data.previous_state, e.data.state])).toEqual([
        [null, "run"],
        ["run", "stop"],
      ]);
      expect(states[1]!.data.previous_duration_ms).toBe(
        Date.parse(states[1]!.time as string) - Date.parse(states[0]!.time as string),
      );
      expect(await daemon.stop()).toBe(0);
    } finally {
      clearInterval(bump);
      await daemon.kill();
      await sub.close();
      await sim.close();
    }
  });

  it("point 3: a change of connection settings still opens a new connection, state afresh", async () => {
    const first = await startModbusSimulator({ port: 0, recordRequests: false });
    const second = await startModbusSimulator({ port: 0, recordRequests: false });
    first.setRegisters(1, "HR0", [1]);
    second.setRegisters(1, "HR0", [2]);
    const base = `live-${Math.random().toString(36).slice(2, 8)}`;
    const device = (port: number) => `  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    poll_interval: 50ms
    tags:
      - { name: counter, address: HR0, type: uint16 }
`;
    let text = "";
    const files = writeConfig((data) => {
      text = head(data, base);
      return text + device(first.port);
    });
    const sub = await startSubscriber(broker.url, `${base}/#`);
    const daemon = startDaemon(["run", "-c", files.config]);
    const audits = () => daemon.lines().filter((l) => l.audit === "config reload");
    try {
      await waitUntil(
        () => of(sub.messages, "counter", "telemetry").length > 0,
        20_000,
        "the first value",
      );
      writeFileSync(files.config, text + device(second.port));
      const mark = sub.messages.length;
      daemon.child.kill("SIGHUP");
      await waitUntil(() => audits().length === 1, 15_000, "the reload's audit line");
      expect(audits()[0]).toMatchObject({ changed: ["plc"], updatedLive: [] });
      await waitUntil(
        () => of(sub.messages.slice(mark), "counter", "telemetry").length > 0,
        15_000,
        "the value from the new PLC",
      );
      // another PLC: its value starts afresh, as a first one
      expect(of(sub.messages.slice(mark), "counter", "telemetry")[0]!.event.data).toMatchObject({
        value: 2,
        reason: "initial",
      });
      expect(second.connections).toBe(1);
      expect(await daemon.stop()).toBe(0);
    } finally {
      await daemon.kill();
      await sub.close();
      await first.close();
      await second.close();
    }
  });

  it("point 3: OPC UA: one tag added, no new session, the other tag's state kept", async () => {
    const files = writeConfig(() => "");
    const sim: OpcuaSimulator = await startOpcuaSimulator({ pkiDir: join(files.dir, "sim") });
    const sessions = sessionCounter(sim, join(files.dir, "counter-pki"));
    sim.set("Measurement1", 1.5);
    sim.set("SerialNumber", "SN-1");
    const base = `live-${Math.random().toString(36).slice(2, 8)}`;
    const data = join(files.dir, "data");
    const device = (extra: string) => `  - id: ua
    protocol: opcua
    endpoint: ${sim.endpointUrl}
    security: { mode: None }
    publishing_interval: 100ms
    sampling_interval: 0ms
    tags:
      - { name: depth, node: "${NSU}Measurement1", type: double }
${extra}`;
    writeFileSync(files.config, head(data, base) + device(""));
    const sub = await startSubscriber(broker.url, `${base}/#`);
    const daemon = startDaemon(["run", "-c", files.config]);
    const audits = () => daemon.lines().filter((l) => l.audit === "config reload");
    try {
      await waitUntil(
        () => of(sub.messages, "depth", "telemetry").length > 0,
        30_000,
        "the first value",
      );
      const before = await sessions.cumulated(); // the gateway's session and this count's

      writeFileSync(
        files.config,
        `${head(data, base) + device("")}      - { name: serial, node: "${NSU}SerialNumber", type: string }\n`,
      );
      const mark = sub.messages.length;
      daemon.child.kill("SIGHUP");
      await waitUntil(() => audits().length === 1, 15_000, "the reload's audit line");
      expect(audits()[0]).toMatchObject({ changed: ["ua"], updatedLive: ["ua"] });
      await waitUntil(
        () => of(sub.messages.slice(mark), "serial", "telemetry").length > 0,
        15_000,
        "the new tag's first value",
      );
      sim.set("Measurement1", 2.5);
      await waitUntil(
        () => of(sub.messages.slice(mark), "depth", "telemetry").length > 0,
        15_000,
        "the kept tag's change",
      );
      // one more session: this count's own; none of the gateway's
      expect(await sessions.cumulated()).toBe(before + 1);
      expect(of(sub.messages.slice(mark), "depth", "telemetry")[0]!.event.data).toMatchObject({
        value: 2.5,
        previous: 1.5,
        reason: "change",
      });
      expect(of(sub.messages.slice(mark), "serial", "telemetry")[0]!.event.data).toMatchObject({
        value: "SN-1",
        reason: "initial",
      });
      expect(await daemon.stop()).toBe(0);
    } finally {
      await daemon.kill();
      await sub.close();
      await sim.close();
    }
  }, 90_000);
});

/** Reads the server's CumulatedSessionCount (i=2278) in a session of its own. */
function sessionCounter(sim: OpcuaSimulator, pkiDir: string) {
  return {
    async cumulated(): Promise<number> {
      const certificates = new OPCUACertificateManager({
        rootFolder: pkiDir,
        automaticallyAcceptUnknownCertificate: true,
      });
      const client = OPCUAClient.create({
        endpointMustExist: false,
        securityMode: MessageSecurityMode.None,
        securityPolicy: SecurityPolicy.None,
        clientCertificateManager: certificates,
      });
      await client.connect(sim.endpointUrl);
      try {
        const session = await client.createSession();
        const read = await session.read({ nodeId: "ns=0;i=2278", attributeId: AttributeIds.Value });
        await session.close();
        return Number(read.value.value);
      } finally {
        await client.disconnect();
        await certificates.dispose();
      }
    },
  };
}
