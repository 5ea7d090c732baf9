/**
 * Issue 12.7 through the whole gateway (Gateway.start: Modbus simulator, engine, journal,
 * publisher, /healthz and /metrics) against a real mosquitto with `max_packet_size 600` and an
 * ACL that denies one tag's topic: the events after the refused ones arrive within seconds on
 * one connection, and the refused events are visible as set aside in the journal, in
 * /metrics, as plc2mqtt.delivery.set_aside events, in /healthz (degraded, with topic and
 * reason) and in `plc2mqtt events --set-aside`. Once the cause is fixed (the broker restarted
 * without the limit, the ACL opened), `plc2mqtt replay --set-aside` (the built CLI, beside the
 * running gateway) delivers them, and they are set aside no more.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { Gateway } from "../../src/app/gateway.ts";
import { parseConfig } from "../../src/config/load.ts";
import type { CodecSpec } from "../../src/drivers/modbus/codec.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { runCli } from "../support/cli.ts";
import { assertValidEvent } from "../support/event-schema.ts";
import { type Broker, type Subscriber, startMosquitto, subscribe } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";

const UINT16: CodecSpec = { type: "uint16", byteOrder: "ABCD" };
const RECIPE: CodecSpec = { type: "string", byteOrder: "ABCD", length: 100 };
const CLIENT_ID = "e2e-set-aside-gw";
const BASE = `e2e-sa-${Math.random().toString(36).slice(2, 8)}`;
const TOPIC = (tag: string) => `${BASE}/testsite/assembly/line-2/plc/telemetry/${tag}`;
const WITHIN_MS = 5000;

let sim: ModbusSimulator;
let broker: Broker;
let sub: Subscriber;
let gateway: Gateway;
let configFile: string;

interface Doc {
  id: string;
  sequence: string;
  type: string;
  subject: string;
  replay?: boolean;
  data: Record<string, unknown>;
}

const docs = (topic: string): Doc[] =>
  sub.messages.filter((m) => m.topic === topic).map((m) => JSON.parse(m.payload) as Doc);

async function http(path: string): Promise<{ status: number; text: string }> {
  const { host, port } = gateway.httpAddress!;
  const response = await fetch(`http://${host}:${port}${path}`);
  return { status: response.status, text: await response.text() };
}

function metric(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  sim = await startModbusSimulator({ port: 0 });
  sim.setValue(1, "HR0", 0, UINT16);
  sim.setValue(1, "HR10", 7, UINT16);
  sim.setValue(1, "HR100", "R".repeat(200), RECIPE);
  broker = await startMosquitto({
    // mosquitto's default queue limit (the harness's 0 makes mosquitto 2.0 reset a client
    // after a denied QoS 1 publish: refusals.test.ts)
    // 600: the gateway's own events (a CloudEvent envelope of about 300 bytes) fit, the recipe
    // (200 characters: about 640 bytes) does not; at 540 the set-aside notice itself (event id,
    // topic and reason of the refused event) would not fit either and would be set aside too
    config: ["max_packet_size 600", "max_queued_messages 1000"],
    acl: `topic deny ${TOPIC("secret")}\ntopic readwrite #\n`,
  });
  sub = await subscribe(broker.url, `${BASE}/#`);
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-set-aside-"));
  configFile = join(dir, "gateway.yaml");
  const text = `version: 1
gateway: { id: e2e-gw, site: testsite, data_dir: ${join(dir, "data")} }
mqtt: { url: "${broker.url}", client_id: ${CLIENT_ID}, base_topic: ${BASE}, reconnect_min: 100ms, reconnect_max: 1s }
journal: { commit_interval: 10ms }
http: { listen: "127.0.0.1:0", health: { topic_interval: false } }
devices:
  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    area: assembly
    line: line-2
    poll_interval: 50ms
    tags:
      - { name: counter, address: HR0, type: uint16 }
      - { name: secret, address: HR10, type: uint16 }
      - { name: recipe, address: HR100, type: string, length: 100 }
`;
  writeFileSync(configFile, text);
  const { config } = parseConfig(text, { file: configFile, env: {}, baseDir: dir });
  gateway = await Gateway.start({ config, log: silentLogger(), version: "0.0.0-test" });
});

afterAll(async () => {
  await gateway?.stop();
  await sub?.close();
  await broker?.stop();
  await sim?.close();
});

describe("events the broker refuses, through the whole gateway", () => {
  it("never stall the rest, and are visible as set aside", async () => {
    // the initial events of `recipe` (about 640 bytes) and `secret` (denied) are refused
    await eventually(() => docs(TOPIC("counter")).length >= 1, 15_000, "the first counter event");
    const changedAt = Date.now();
    for (let i = 1; i <= 5; i++) {
      sim.setValue(1, "HR0", i, UINT16);
      await eventually(
        () => docs(TOPIC("counter")).some((d) => d.data.value === i),
        WITHIN_MS,
        `counter ${i}`,
      );
    }
    expect(Date.now() - changedAt).toBeLessThan(5 * WITHIN_MS);
    expect(docs(TOPIC("counter")).map((d) => d.data.value)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(docs(TOPIC("recipe"))).toEqual([]);
    expect(docs(TOPIC("secret"))).toEqual([]);

    // one connection
    expect(broker.connections(CLIENT_ID)).toBe(1);
    expect(gateway.publisher!.stats().reconnects).toBe(0);

    // the journal
    const setAside = gateway.journal.query({ setAside: true });
    expect(setAside.map((r) => [r.subject, r.setAside?.reason])).toEqual(
      expect.arrayContaining([
        [
          "recipe",
          expect.stringMatching(
            /^Packet too large: \d+ bytes, the broker's Maximum Packet Size is 600$/,
          ),
        ],
        ["secret", "the broker refused it: Not authorized (reason code 0x87)"],
      ]),
    );
    expect(setAside).toHaveLength(2);

    // the announcing events, published in order like any event
    const announced = () =>
      sub.messages
        .map((m) => JSON.parse(m.payload) as Doc)
        .filter((d) => d.type === "plc2mqtt.delivery.set_aside");
    await eventually(() => announced().length >= 2, WITHIN_MS, "the set-aside events");
    for (const d of announced()) assertValidEvent(d);
    expect(announced().map((d) => d.data.event_id)).toEqual(
      expect.arrayContaining(setAside.map((r) => r.id)),
    );

    // /metrics
    const metrics = (await http("/metrics")).text;
    expect(metric(metrics, 'plc2mqtt_events_set_aside_total{reason="packet_too_large"}')).toBe(1);
    expect(metric(metrics, 'plc2mqtt_events_set_aside_total{reason="not_authorized"}')).toBe(1);
    expect(metric(metrics, 'plc2mqtt_events_set_aside_total{reason="connection_closed"}')).toBe(0);
    expect(metric(metrics, "plc2mqtt_journal_set_aside_events")).toBe(2);

    // /healthz: degraded, with topic and reason
    const health = await http("/healthz");
    expect(health.status).toBe(200);
    const summary = JSON.parse(health.text) as { status: string; degraded: string[] };
    expect(summary.status).toBe("degraded");
    expect(summary.degraded).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(`^1 event set aside: ${TOPIC("recipe")}: Packet too large: \\d+ bytes`),
        ),
        `1 event set aside: ${TOPIC("secret")}: the broker refused it: Not authorized (reason code 0x87)`,
      ]),
    );

    // plc2mqtt events --set-aside
    const table = await runCli(["events", "-c", configFile, "--set-aside"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/plc\/recipe .*set aside: Packet too large/);
    expect(table.stdout).toMatch(/plc\/secret .*set aside: the broker refused it: Not authorized/);
    expect(table.stdout).not.toMatch(/plc\/counter/);
  });

  it("are delivered by replay --set-aside once the cause is fixed, and set aside no more", async () => {
    const ids = gateway.journal.query({ setAside: true }).map((r) => r.id);
    broker.setAcl("topic readwrite #\n");
    await broker.reconfigure(["max_queued_messages 1000"]);
    await eventually(() => gateway.publisher!.stats().connected, 15_000, "the gateway back");

    const replay = await runCli(["replay", "-c", configFile, "--set-aside"]);
    expect(replay.stderr).toMatch(/replayed 2 of 2 set-aside event\(s\)/);
    expect(replay.stderr).toMatch(/2 event\(s\) no longer set aside/);
    expect(replay.code).toBe(0);

    await eventually(
      () => docs(TOPIC("recipe")).length + docs(TOPIC("secret")).length >= 2,
      WITHIN_MS,
      "the replayed events",
    );
    const replayed = [...docs(TOPIC("recipe")), ...docs(TOPIC("secret"))];
    for (const d of replayed) {
      expect(d.replay).toBe(true);
      assertValidEvent(d);
    }
    expect(replayed.map((d) => d.id).sort()).toEqual([...ids].sort());

    expect(gateway.journal.query({ setAside: true })).toEqual([]);
    expect(gateway.journal.stats().setAside).toBe(0);
    const metrics = (await http("/metrics")).text;
    expect(metric(metrics, "plc2mqtt_journal_set_aside_events")).toBe(0);
    const summary = JSON.parse((await http("/healthz")).text) as { degraded: string[] };
    expect(summary.degraded).toEqual([]);
    const none = await runCli(["events", "-c", configFile, "--set-aside"]);
    expect(none.stderr).toMatch(/no events match/);
  });
});
