/**
 * `plc2mqtt replay`, the built CLI, while `plc2mqtt run` keeps running against the same
 * mosquitto: a subscriber receives exactly the journaled events of the range (and filters),
 * each with replay: true, its original id, sequence and topic, published without the retain
 * flag (MQTT 5 retain-as-published shows it), valid against the schema; the retained state is
 * not overwritten by history; the daemon keeps its connection (a different client id).
 */
import mqtt from "mqtt";
import { describe, expect, it } from "vitest";
import { openJournalReader } from "../../src/journal/reader.ts";
import { runCli } from "../support/cli.ts";
import { assertValidEvent } from "../support/event-schema.ts";
import { startGateway, usePlantAndBroker, waitUntil, writeGatewayConfig } from "./harness.ts";
import { expectReplayOf } from "./replay-checks.ts";

interface Message {
  topic: string;
  retain: boolean;
  doc: Record<string, unknown> & { id: string; sequence: string; replay?: boolean };
}

/** MQTT 5 with retain-as-published: `retain` is the flag the publisher set. */
async function listen(url: string, filter: string) {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clean: true });
  const messages: Message[] = [];
  client.on("message", (topic, payload, packet) => {
    const doc = JSON.parse(payload.toString("utf8"));
    assertValidEvent(doc);
    messages.push({ topic, retain: packet.retain, doc });
  });
  await client.subscribeAsync(filter, { qos: 1, rap: true });
  return { messages, close: () => client.endAsync() };
}

function journal(
  dataDir: string,
  query: Parameters<ReturnType<typeof openJournalReader>["query"]>[0],
) {
  const reader = openJournalReader(dataDir);
  try {
    return reader.query({ limit: 1_000_000, ...query });
  } finally {
    reader.close();
  }
}

describe("plc2mqtt replay", () => {
  const env = usePlantAndBroker();

  it("re-publishes exactly the matching events, marked, in order, never retained, beside the running daemon", async () => {
    const files = writeGatewayConfig(env.plant.sim.port, env.broker.url);
    const gateway = startGateway(files.config);
    const sub = await listen(env.broker.url, `${files.base}/#`);
    try {
      env.plant.run(30);
      await waitUntil(
        () => sub.messages.filter((m) => m.doc.type === "plc2mqtt.state.changed").length >= 6,
        20_000,
        "state changes",
      );
      env.plant.pause();
      // everything journaled so far is acknowledged
      await waitUntil(
        () => journal(files.dataDir, { status: "pending" }).length === 0,
        10_000,
        "the backlog to drain",
      );
      const published = journal(files.dataDir, { status: "published" });
      const times = published.map((r) => r.time).sort((a, b) => a - b);
      const from = new Date(times[Math.floor(times.length / 4)]!).toISOString();
      const to = new Date(times[Math.floor((times.length * 3) / 4)]!).toISOString();
      const expected = journal(files.dataDir, {
        status: "published",
        from: Date.parse(from),
        to: Date.parse(to),
      });
      expect(expected.length).toBeGreaterThan(2);
      expect(expected.length).toBeLessThan(published.length);

      // --dry-run: what would go out, and nothing does
      const dry = await runCli([
        "replay",
        "-c",
        files.config,
        "--from",
        from,
        "--to",
        to,
        "--dry-run",
      ]);
      expect(dry.code, dry.stderr).toBe(0);
      const dryLines = dry.stdout.trim().split("\n");
      expect(dryLines.map((l) => l.slice(0, l.indexOf(" ")))).toEqual(expected.map((r) => r.topic));
      expect(dry.stderr).toMatch(new RegExp(`dry run: ${expected.length} event\\(s\\)`));
      await new Promise((r) => setTimeout(r, 300));
      expect(sub.messages.filter((m) => m.doc.replay)).toEqual([]);

      // a time range
      const run = await runCli([
        "replay",
        "-c",
        files.config,
        "--from",
        from,
        "--to",
        to,
        "--progress-every",
        "2",
      ]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/replayed 2\/\d+/);
      expect(run.stderr).toMatch(
        new RegExp(
          `replayed ${expected.length} of ${expected.length} event\\(s\\) to .* as plc2mqtt-e2e-gw-replay-\\d+`,
        ),
      );
      const replays = () => sub.messages.filter((m) => m.doc.replay === true);
      await waitUntil(() => replays().length >= expected.length, 10_000, "the replayed events");
      await new Promise((r) => setTimeout(r, 300)); // nothing more may come
      expectReplayOf(replays(), expected);
      expect(dryLines.map((l) => JSON.parse(l.slice(l.indexOf(" ") + 1)))).toEqual(
        replays().map((m) => m.doc),
      );

      // filters: device and type; state changes are retained topics, replays must not be
      const before = replays().length;
      const stateChanges = journal(files.dataDir, {
        status: "published",
        device: "plc",
        type: "plc2mqtt.state.changed",
      });
      const filtered = await runCli([
        "replay",
        "-c",
        files.config,
        "--from",
        "-1h",
        "--device",
        "plc",
        "--type",
        "plc2mqtt.state.changed",
      ]);
      expect(filtered.code, filtered.stderr).toBe(0);
      await waitUntil(
        () => replays().length >= before + stateChanges.length,
        10_000,
        "the replayed state changes",
      );
      await new Promise((r) => setTimeout(r, 300));
      expectReplayOf(replays().slice(before), stateChanges);

      // the retained state is still the live one
      const fresh = await listen(env.broker.url, `${files.base}/#`);
      try {
        await waitUntil(() => fresh.messages.length > 0, 5000, "retained messages");
        await new Promise((r) => setTimeout(r, 300));
        expect(fresh.messages.some((m) => m.doc.type === "plc2mqtt.state.changed")).toBe(true);
        expect(fresh.messages.filter((m) => m.doc.replay)).toEqual([]);
      } finally {
        await fresh.close();
      }

      // the daemon kept its session and goes on publishing live events
      const lastLive = published.at(-1)!.sequence;
      env.plant.run(30);
      await waitUntil(
        () => sub.messages.some((m) => !m.doc.replay && BigInt(m.doc.sequence) > lastLive + 3n),
        10_000,
        "live events after the replay",
      );
      env.plant.pause();
      expect(env.broker.output()).not.toMatch(/already connected/i);
      expect(gateway.output()).not.toMatch(/MQTT connection lost/);
      expect(await gateway.stop()).toBe(0);
    } finally {
      await gateway.kill();
      await sub.close();
    }
  });

  it("replays nothing when no published event matches, and names a missing broker", async () => {
    const files = writeGatewayConfig(env.plant.sim.port, env.broker.url);
    const gateway = startGateway(files.config);
    try {
      await waitUntil(
        () => {
          try {
            return journal(files.dataDir, { status: "published" }).length > 0;
          } catch {
            return false; // not created yet
          }
        },
        15_000,
        "published events",
      );
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
    const none = await runCli(["replay", "-c", files.config, "--from", "-1h", "--to", "-30m"]);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stderr).toMatch(/no published events match: nothing replayed/);
    await env.broker.stop();
    try {
      const down = await runCli(["replay", "-c", files.config, "--from", "-1h"]);
      expect(down.code).toBe(1);
      expect(down.stderr).toMatch(
        /MQTT_CONNECT: connect to mqtt:\/\/127\.0\.0\.1:\d+ as plc2mqtt-e2e-gw-replay-\d+ failed/,
      );
    } finally {
      await env.broker.start();
    }
  });
});
