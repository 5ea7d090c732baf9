/**
 * Batching (issue 12.3) against real brokers: the publisher with the real journal (rendering
 * real CloudEvents on the product's topics), a real mosquitto (Receive Maximum 20,
 * max_packet_size, an ACL) and aedes (an MQTT 3.1.1 broker that closes the connection on a
 * publish it refuses, here one whose payload holds a marked event).
 *
 * Each batch received is validated against the events JSON Schema's batch document; its events
 * are consecutive in sequence, of one device and class, on <class topic>/_batch.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Aedes } from "aedes";
import { afterEach, describe, expect, it } from "vitest";
import { fastRenderer } from "../../src/events/render-fast.ts";
import { buildTopic, DEFAULT_TOPIC_TEMPLATE, isRetained } from "../../src/events/topic.ts";
import { EVENT_TYPES, type GatewayEvent } from "../../src/events/types.ts";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal, JournalRecord } from "../../src/journal/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { Publisher } from "../../src/publish/publisher.ts";
import { publishPacketSize } from "../../src/publish/refusals.ts";
import { assertValidBatch, assertValidEvent } from "../support/event-schema.ts";
import { type Subscriber, startMosquitto, subscribe } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { type CapturedLog, captureLog, mqttConfig, testStatus } from "./fixtures.ts";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const WITHIN_MS = 10_000;
const T0 = 1_700_000_000_000;
const topicContext = { base: "t", gateway: "gw-1", template: DEFAULT_TOPIC_TEMPLATE };

function tel(device: string, subject: string, value: number | string, i: number): GatewayEvent {
  return {
    type: EVENT_TYPES.telemetry,
    device,
    subject,
    time: T0 + i,
    data: { value, previous: null, quality: "good", reason: "change" },
    topicClass: "telemetry",
    asset: {},
  };
}

function state(device: string, i: number): GatewayEvent {
  return {
    type: EVENT_TYPES.stateChanged,
    device,
    subject: "mode",
    time: T0 + i,
    data: { state: "run", previous_state: "idle", raw: 1, previous_duration_ms: 5 },
    topicClass: "state",
    asset: {},
  };
}

/** The real journal with the product's renderer: CloudEvents on t/<device>/<class>/<name>. */
async function realJournal(): Promise<Journal> {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-batch-"));
  const document = fastRenderer("gw-1");
  const journal = await openJournal({
    dir,
    gatewayId: "gw-1",
    maxBytes: 64 * 1024 * 1024,
    retentionMs: 86_400_000,
    commitIntervalMs: 10,
    commitMaxEvents: 1000,
    render: (event, sequence, id) => ({
      topic: buildTopic(event, topicContext),
      retain: isRetained(event),
      payload: document(event, sequence, id),
    }),
    log: silentLogger(),
  });
  cleanup.push(async () => {
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return journal;
}

function start(
  journal: Journal,
  url: string,
  clientId: string,
  overrides: Record<string, unknown>,
): { pub: Publisher; log: CapturedLog } {
  const log = captureLog();
  const pub = new Publisher({
    journal,
    mqtt: mqttConfig(url, overrides),
    clientId,
    status: testStatus,
    log: log.log,
  });
  pub.start();
  cleanup.push(() => pub.stop());
  return { pub, log };
}

async function listen(url: string): Promise<Subscriber> {
  const sub = await subscribe(url, "t/#");
  cleanup.push(() => sub.close());
  return sub;
}

interface Doc {
  id: string;
  sequence: string;
  type: string;
  source: string;
  data: Record<string, unknown>;
}

/** One message of the stream: a batch (its events) or a single event. */
interface Message {
  topic: string;
  batch: boolean;
  bytes: number;
  events: Doc[];
}

/**
 * The event messages received (status topics left out), each validated against the schema: a
 * batch as a batch document, whose events are consecutive in sequence and of one source and
 * type; anything else as one event.
 */
function received(sub: Subscriber): Message[] {
  return sub.messages
    .filter((m) => !m.topic.startsWith("t/status/"))
    .map((m) => {
      const doc = JSON.parse(m.payload) as Doc | Doc[];
      const bytes = publishPacketSize(m.topic, m.payload, 5);
      if (!Array.isArray(doc)) {
        assertValidEvent(doc);
        return { topic: m.topic, batch: false, bytes, events: [doc] };
      }
      assertValidBatch(doc);
      for (let i = 1; i < doc.length; i++) {
        expect(BigInt(doc[i]!.sequence)).toBe(BigInt(doc[i - 1]!.sequence) + 1n);
        expect(doc[i]!.source).toBe(doc[0]!.source);
        expect(doc[i]!.type).toBe(doc[0]!.type);
      }
      return { topic: m.topic, batch: true, bytes, events: doc };
    });
}

/** What arrived, as (topic, events in it) pairs. */
const shape = (messages: readonly Message[]) =>
  messages.map((m) => [m.topic, m.batch ? m.events.length : "single"]);

const sequences = (messages: readonly Message[]) =>
  messages.flatMap((m) => m.events.map((e) => BigInt(e.sequence)));

const seqs = (records: readonly JournalRecord[]) => records.map((r) => r.sequence);

const count = (messages: readonly Message[]) => messages.reduce((n, m) => n + m.events.length, 0);

describe("telemetry batches", () => {
  it("are runs of one device's telemetry, at most max_events each; other events single in their place; order kept", async () => {
    const broker = await startMosquitto();
    cleanup.push(() => broker.stop());
    const sub = await listen(broker.url);
    const journal = await realJournal();
    const events: GatewayEvent[] = [];
    let i = 0;
    for (let k = 0; k < 25; k++) events.push(tel("p1", `r${k}`, k, i++));
    events.push(state("p1", i++));
    for (let k = 0; k < 7; k++) events.push(tel("p1", "counter", k, i++));
    for (let k = 0; k < 3; k++) events.push(tel("p2", "counter", k, i++));
    for (let k = 0; k < 2; k++) events.push(tel("p1", "counter", 100 + k, i++));
    events.push(state("p2", i++));
    const records = await journal.append(events);
    const { pub } = start(journal, broker.url, "pub-batch", {
      batch: { classes: ["telemetry"], max_events: 10, max_delay: "0ms" },
    });

    await eventually(() => count(received(sub)) >= records.length, WITHIN_MS, "every event");
    const messages = received(sub);
    expect(shape(messages)).toEqual([
      ["t/p1/telemetry/_batch", 10],
      ["t/p1/telemetry/_batch", 10],
      ["t/p1/telemetry/_batch", 5],
      ["t/p1/state/mode", "single"],
      ["t/p1/telemetry/_batch", 7],
      ["t/p2/telemetry/_batch", 3],
      ["t/p1/telemetry/_batch", 2],
      ["t/p2/state/mode", "single"],
    ]);
    // the journal's documents verbatim, in sequence order, each id once
    expect(sequences(messages)).toEqual(seqs(records));
    expect(messages.flatMap((m) => m.events.map((e) => JSON.stringify(e)))).toEqual(
      records.map((r) => JSON.stringify(JSON.parse(r.payload))),
    );
    expect(new Set(messages.flatMap((m) => m.events.map((e) => e.id))).size).toBe(records.length);
    // a batch's PUBACK acknowledges every event in it
    await eventually(() => journal.stats().pending === 0, WITHIN_MS, "nothing pending");
    expect(pub.stats().published).toBe(records.length + 1); // and the online status
    expect(pub.stats().reconnects).toBe(0);
  });

  it("are off by default: every event its own message on its own topic", async () => {
    const broker = await startMosquitto();
    cleanup.push(() => broker.stop());
    const sub = await listen(broker.url);
    const journal = await realJournal();
    const records = await journal.append([0, 1, 2].map((k) => tel("p1", `r${k}`, k, k)));
    start(journal, broker.url, "pub-unbatched", {});

    await eventually(() => received(sub).length >= 3, WITHIN_MS, "the events");
    expect(shape(received(sub))).toEqual([
      ["t/p1/telemetry/r0", "single"],
      ["t/p1/telemetry/r1", "single"],
      ["t/p1/telemetry/r2", "single"],
    ]);
    expect(sequences(received(sub))).toEqual(seqs(records));
  });

  it("wait up to max_delay for more of their run, then go however few they hold", async () => {
    const broker = await startMosquitto();
    cleanup.push(() => broker.stop());
    const sub = await listen(broker.url);
    const journal = await realJournal();
    start(journal, broker.url, "pub-delay", {
      batch: { classes: ["telemetry"], max_events: 100, max_delay: "2s" },
    });
    await eventually(() => sub.messages.length > 0, WITHIN_MS, "the online status");
    // two group commits, one after the other: well within max_delay of each other
    const first = await journal.append([0, 1, 2].map((k) => tel("p1", `r${k}`, k, k)));
    const second = await journal.append([3, 4].map((k) => tel("p1", `r${k}`, k, k)));

    // nothing else comes: the batch goes out when its delay is up
    await eventually(() => received(sub).length > 0, WITHIN_MS, "the held batch");
    await new Promise((r) => setTimeout(r, 300));
    const messages = received(sub);
    expect(shape(messages)).toEqual([["t/p1/telemetry/_batch", 5]]);
    expect(sequences(messages)).toEqual(seqs([...first, ...second]));
  });

  it("are cut to fit the broker's Maximum Packet Size; an event too large alone is set aside", async () => {
    const LIMIT = 1000;
    const broker = await startMosquitto({ config: [`max_packet_size ${LIMIT}`] });
    cleanup.push(() => broker.stop());
    const sub = await listen(broker.url);
    const journal = await realJournal();
    const events: GatewayEvent[] = [];
    for (let k = 0; k < 20; k++) events.push(tel("p1", `r${k}`, "v".repeat(10 + 7 * k), k));
    events.splice(12, 0, tel("p1", "recipe", "r".repeat(1200), 12));
    const records = await journal.append(events);
    const large = records[12]!;
    const rest = records.filter((r) => r !== large);
    const { pub } = start(journal, broker.url, "pub-cut", {
      batch: { classes: ["telemetry"], max_events: 100, max_delay: "0ms" },
    });

    await eventually(() => count(received(sub)) >= rest.length, WITHIN_MS, "the events");
    const messages = received(sub);
    expect(sequences(messages)).toEqual(seqs(rest));
    for (const m of messages) {
      expect(m.topic).toBe("t/p1/telemetry/_batch");
      expect(m.bytes).toBeLessThanOrEqual(LIMIT);
    }
    // cut, not split into ones: several batches, most of them with several events
    expect(messages.length).toBeGreaterThan(2);
    expect(messages.filter((m) => m.events.length > 1).length).toBeGreaterThan(2);
    // its set_aside row is written with the next group commit
    await eventually(
      () => journal.query({ setAside: true }).length > 0,
      WITHIN_MS,
      "the large event set aside",
    );
    const setAside = journal.query({ setAside: true });
    expect(seqs(setAside)).toEqual([large.sequence]);
    expect(setAside[0]!.setAside!.reason).toMatch(
      /^Packet too large: \d+ bytes, the broker's Maximum Packet Size is 1000$/,
    );
    await eventually(
      () => sub.messages.some((m) => m.topic === "t/status/delivery"),
      WITHIN_MS,
      "the set-aside event",
    );
    const notices = sub.messages
      .filter((m) => m.topic === "t/status/delivery")
      .map((m) => JSON.parse(m.payload) as { data: Record<string, unknown> });
    expect(notices.map((n) => n.data.topic)).toEqual(["t/p1/telemetry/_batch"]);
    expect(pub.stats().setAside).toEqual({ packet_too_large: 1 });
    expect(broker.connections("pub-cut")).toBe(1);
  });
});

describe("a batch the broker refuses", () => {
  it("with a PUBACK reason code (ACL, 0x87): its events are sent one by one, each refused one set aside, the rest delivered", async () => {
    const broker = await startMosquitto({
      acl: "topic deny t/p2/telemetry/_batch\ntopic readwrite #\n",
      config: ["max_queued_messages 1000"],
    });
    cleanup.push(() => broker.stop());
    const sub = await listen(broker.url);
    const journal = await realJournal();
    const records = await journal.append([
      ...[0, 1, 2, 3, 4].map((k) => tel("p1", `r${k}`, k, k)),
      ...[5, 6, 7, 8].map((k) => tel("p2", `r${k}`, k, k)),
      ...[9, 10, 11].map((k) => tel("p1", `r${k}`, k, k)),
    ]);
    const denied = records.filter((r) => r.device === "p2");
    const { pub, log } = start(journal, broker.url, "pub-refused", {
      batch: { classes: ["telemetry"], max_events: 10, max_delay: "0ms" },
    });

    const delivered = records.filter((r) => r.device === "p1");
    await eventually(() => count(received(sub)) >= delivered.length, WITHIN_MS, "the rest");
    await eventually(
      () => journal.query({ setAside: true }).length >= denied.length,
      WITHIN_MS,
      "the refused events set aside",
    );
    expect(sequences(received(sub))).toEqual(seqs(delivered));
    const setAside = journal.query({ setAside: true });
    expect(setAside.map((r) => [r.sequence, r.setAside?.reason])).toEqual(
      denied.map((r) => [r.sequence, "the broker refused it: Not authorized (reason code 0x87)"]),
    );
    expect(pub.stats().setAside).toEqual({ not_authorized: denied.length });
    const splits = log.text().match(/refused a batch; sending its events one by one/g) ?? [];
    expect(splits).toHaveLength(1);
    expect(broker.connections("pub-refused")).toBe(1);
  });

  it("by closing the connection (MQTT 3.1.1, aedes): only the refused event is set aside, found one by one", async () => {
    const aedes = await Aedes.createBroker();
    aedes.authorizePublish = (_client, packet, done) =>
      done(String(packet.payload).includes("refuse-me") ? new Error("not authorized") : null);
    const server: Server = createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanup.push(async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const address = server.address();
    const url = `mqtt://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    const sub = await listen(url);
    const journal = await realJournal();
    const records = await journal.append(
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((k) => tel("p1", `r${k}`, k === 4 ? "refuse-me" : k, k)),
    );
    const refused = records[4]!;
    const { pub, log } = start(journal, url, "pub-v311", {
      batch: { classes: ["telemetry"], max_events: 10, max_delay: "0ms" },
    });

    // re-sends of events the broker took but did not acknowledge carry the same ids
    const unique = () =>
      new Map(received(sub).flatMap((m) => m.events.map((e) => [e.id, e.sequence])));
    await eventually(() => unique().size >= records.length - 1, 20_000, "the rest");
    await eventually(
      () => journal.query({ setAside: true }).length > 0,
      WITHIN_MS,
      "the refused event set aside",
    );
    expect([...unique().values()].map(BigInt)).toEqual(seqs(records.filter((r) => r !== refused)));
    expect(seqs(journal.query({ setAside: true }))).toEqual([refused.sequence]);
    expect(pub.stats().setAside).toEqual({ connection_closed: 1 });
    // lost with the batch and the online status in flight (careful), with the batch alone (its
    // events one at a time from then on), then three times right after the refused event
    expect(
      log.text().match(/lost right after a batch: sending its events one by one/g),
    ).toHaveLength(1);
    const closes = log
      .text()
      .split("\n")
      .filter((l) => l.includes("closed right after an event"))
      .map((l) => (JSON.parse(l) as { sequence: string; times: number }).times);
    expect(closes).toEqual([1, 2, 3]);
    expect(pub.stats().reconnects).toBeLessThanOrEqual(5);
  });
});
