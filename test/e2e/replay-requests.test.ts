/**
 * Replay on request (issue 14), the built CLI daemon against a real mosquitto and the Modbus
 * simulator: a consumer (mqtt.js, MQTT 5) asks `<base>/<site>/cmd/<gateway id>/replay` for a
 * range while the gateway publishes live. It gets `accepted` with the right count on its
 * response topic with its correlation data, then exactly the replayed events (flagged, original
 * id, sequence, time and topic, never retained), then `completed`; live events keep arriving
 * within the documented bound meanwhile. An unlisted client, a wrong secret and a second
 * request while one runs are refused; a request without a response topic is ignored. Disabled
 * (the default), the gateway does not subscribe and nothing answers.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { openJournalReader } from "../../src/journal/index.ts";
import type { JournalRecord } from "../../src/journal/types.ts";
import { assertValidEvent } from "../support/event-schema.ts";
import {
  type GatewayFiles,
  startGateway,
  usePlantAndBroker,
  waitUntil,
  writeGatewayConfig,
} from "./harness.ts";
import { expectReplayOf } from "./replay-checks.ts";

/**
 * README "Replay on request": a live event arrives within this of its source time while a
 * replay runs (or within twice the worst before the replay, on a machine slower than that).
 */
const LIVE_LATENCY_BOUND_MS = 1000;

interface EventMessage {
  topic: string;
  retain: boolean;
  at: number;
  doc: Record<string, unknown> & { id: string; sequence: string; time: string; replay?: boolean };
}

interface Answer {
  correlation: string;
  at: number;
  body: Record<string, unknown>;
}

/** A consumer: MQTT 5, events under base (retain-as-published), answers on its response topic. */
async function consumer(url: string, clientId: string, base: string) {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clean: true, clientId });
  const RESPONSES = `replies/${clientId}/${randomBytes(4).toString("hex")}`;
  const events: EventMessage[] = [];
  const answers: Answer[] = [];
  client.on("message", (topic, payload, packet) => {
    const at = Date.now();
    if (topic === RESPONSES) {
      const correlation = packet.properties?.correlationData?.toString("hex") ?? "";
      answers.push({ correlation, at, body: JSON.parse(payload.toString("utf8")) });
      return;
    }
    if (topic.includes("/cmd/")) return; // requests, ours
    const doc = JSON.parse(payload.toString("utf8"));
    assertValidEvent(doc);
    events.push({ topic, retain: packet.retain, at, doc });
  });
  await client.subscribeAsync(`${base}/#`, { qos: 1, rap: true });
  await client.subscribeAsync(RESPONSES, { qos: 1 });
  const ask = async (
    topic: string,
    body: Record<string, unknown>,
    options: { responseTopic?: boolean } = {},
  ): Promise<string> => {
    const correlation = randomBytes(8);
    await client.publishAsync(topic, JSON.stringify(body), {
      qos: 1,
      properties: {
        ...(options.responseTopic === false ? {} : { responseTopic: RESPONSES }),
        correlationData: correlation,
      },
    });
    return correlation.toString("hex");
  };
  /** The n-th answer (from 1) to a request, whatever it says. */
  const answer = async (correlation: string, n = 1) => {
    const mine = () => answers.filter((a) => a.correlation === correlation);
    await waitUntil(() => mine().length >= n, 20_000, `answer ${n} to ${correlation}`);
    return mine()[n - 1]!;
  };
  return { events, answers, ask, answer, close: () => client.endAsync() };
}

function published(dataDir: string, query: { from?: number; to?: number } = {}): JournalRecord[] {
  let reader: ReturnType<typeof openJournalReader>;
  try {
    reader = openJournalReader(dataDir);
  } catch {
    return []; // the journal is not there yet
  }
  try {
    return reader.query({ status: "published", limit: 1_000_000, ...query });
  } finally {
    reader.close();
  }
}

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function gatewayConfig(env: ReturnType<typeof usePlantAndBroker>, mqttKeys?: string): GatewayFiles {
  const files = writeGatewayConfig(env.plant.sim.port, env.broker.url, "", {
    ...(mqttKeys === undefined ? {} : { mqtt: mqttKeys }),
  });
  temps.push(files.dir);
  return files;
}

describe("replay on request", () => {
  const env = usePlantAndBroker({ config: ["log_type subscribe"] });

  it("answers a listed client with the secret, replays exactly the range beside live events, refuses the others", {
    timeout: 120_000,
  }, async () => {
    const secrets = mkdtempSync(join(tmpdir(), "plc2mqtt-e2e-secret-"));
    temps.push(secrets);
    writeFileSync(join(secrets, "replay_secret"), "open-sesame\n");
    const files = gatewayConfig(
      env,
      `replay_requests: { enabled: true, allow_clients: [mes-1], secret: "\${file:${secrets}/replay_secret}", rate: 50 }`,
    );
    const cmd = `${files.base}/testsite/cmd/e2e-gw/replay`;
    const gateway = startGateway(files.config);
    const mes = await consumer(env.broker.url, "mes-1", files.base);
    const intruder = await consumer(env.broker.url, "intruder", files.base);
    try {
      env.plant.run(20);
      await waitUntil(() => published(files.dataDir).length >= 150, 30_000, "150 published events");
      expect(env.broker.output()).toContain(`plc2mqtt-e2e-gw 1 ${cmd}`);
      const sofar = published(files.dataDir);
      const from = sofar[0]!.time;
      const to = sofar.at(-10)!.time; // well behind the live edge: all of it is published
      const secret = "open-sesame";

      // the request, and at once a second one: one replay at a time
      const c1 = await mes.ask(cmd, {
        from: new Date(from).toISOString(),
        to,
        client_id: "mes-1",
        secret,
      });
      const c2 = await mes.ask(cmd, { from, to, client_id: "mes-1", secret });
      const accepted = await mes.answer(c1);
      expect((await mes.answer(c2)).body).toMatchObject({ status: "refused", reason: "busy" });
      const completed = await mes.answer(c1, 2);

      const expected = published(files.dataDir, { from, to });
      expect(expected.length).toBeGreaterThan(100);
      expect(accepted.body).toEqual({
        status: "accepted",
        count: expected.length,
        from_sequence: JSON.parse(expected[0]!.payload).sequence,
        to_sequence: JSON.parse(expected.at(-1)!.payload).sequence,
      });
      expect(completed.body).toEqual({
        status: "completed",
        published: expected.length,
        skipped: 0,
      });
      const replays = () => mes.events.filter((m) => m.doc.replay === true);
      await waitUntil(() => replays().length >= expected.length, 10_000, "the replayed events");
      expectReplayOf(replays(), expected);
      // the intruder subscribes to the same events: it sees the replays too (events are not secret)
      expect(intruder.answers).toEqual([]);

      // live events went on during the replay, each within the bound of its source time
      const during = mes.events.filter(
        (m) => !m.doc.replay && m.at >= accepted.at && m.at <= completed.at,
      );
      const latency = (m: (typeof during)[number]) => m.at - Date.parse(m.doc.time);
      const worst = (ms: typeof during) => Math.max(0, ...ms.map(latency));
      // paced at 50/s, the replay spans seconds: live events kept coming meanwhile
      expect(during.length).toBeGreaterThan(20);
      // within 1 s, or twice the worst before the replay on a machine slower than that
      const before = mes.events.filter((m) => !m.doc.replay && m.at < accepted.at);
      expect(before.length).toBeGreaterThan(20);
      expect(worst(during)).toBeLessThanOrEqual(Math.max(LIVE_LATENCY_BOUND_MS, 2 * worst(before)));

      // refused: an unlisted client (with the secret), a listed one with a wrong secret
      const c3 = await intruder.ask(cmd, { from, to, client_id: "intruder", secret });
      expect((await intruder.answer(c3)).body).toMatchObject({
        status: "refused",
        reason: "unknown_client",
      });
      const c4 = await mes.ask(cmd, { from, to, client_id: "mes-1", secret: "open-sesame!" });
      expect((await mes.answer(c4)).body).toMatchObject({
        status: "refused",
        reason: "bad_secret",
      });
      // no response topic: ignored, and said so in the log
      await mes.ask(cmd, { from, to, client_id: "mes-1", secret }, { responseTopic: false });
      await waitUntil(
        () => gateway.output().includes("replay request without a response topic ignored"),
        10_000,
        "the ignored request in the log",
      );
      // nothing was replayed for them: the next replays are exactly those of a small request
      const replayed = replays().length;
      const c5 = await mes.ask(cmd, {
        from,
        to,
        type: "plc2mqtt.state.changed",
        tag: "mode",
        device: "plc",
        client_id: "mes-1",
        secret,
      });
      expect((await mes.answer(c5)).body).toMatchObject({ status: "accepted" });
      const small = await mes.answer(c5, 2);
      const states = published(files.dataDir, { from, to }).filter(
        (r) => r.type === "plc2mqtt.state.changed" && r.subject === "mode",
      );
      expect(small.body).toMatchObject({ status: "completed", published: states.length });
      await waitUntil(
        () => replays().length >= replayed + states.length,
        10_000,
        "the small replay",
      );
      expectReplayOf(replays().slice(replayed), states);
      env.plant.pause();
      expect(gateway.output()).not.toContain("open-sesame");
      expect(gateway.output()).not.toMatch(/MQTT connection lost/);
      expect(await gateway.stop()).toBe(0);
    } finally {
      env.plant.pause();
      await gateway.kill();
      await mes.close();
      await intruder.close();
    }
  });

  it("is off by default: no subscription, no answer, nothing replayed", {
    timeout: 60_000,
  }, async () => {
    const files = gatewayConfig(env);
    const cmd = `${files.base}/testsite/cmd/e2e-gw/replay`;
    const gateway = startGateway(files.config);
    const mes = await consumer(env.broker.url, "mes-1", files.base);
    try {
      env.plant.run(20);
      await waitUntil(() => published(files.dataDir).length >= 10, 30_000, "published events");
      const c1 = await mes.ask(cmd, { from: 0, client_id: "mes-1" });
      // the broker took the request (PUBACK); 20 live events later there is still no answer
      const seen = mes.events.length;
      await waitUntil(() => mes.events.length >= seen + 20, 30_000, "20 more live events");
      env.plant.pause();
      expect(mes.answers.filter((a) => a.correlation === c1)).toEqual([]);
      expect(mes.events.filter((m) => m.doc.replay)).toEqual([]);
      // the broker logs subscriptions (the consumer's is there); none is to the cmd topic
      expect(env.broker.output()).toContain(`mes-1 1 ${files.base}/#`);
      expect(env.broker.output()).not.toContain(`e2e-gw 1 ${cmd}`);
      expect(await gateway.stop()).toBe(0);
    } finally {
      env.plant.pause();
      await gateway.kill();
      await mes.close();
    }
  });
});
