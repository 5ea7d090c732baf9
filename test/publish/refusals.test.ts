/**
 * One event the broker refuses never stalls the rest (issue 12.7), against real brokers: the
 * publisher with the real journal, a real mosquitto (max_packet_size, an ACL) and aedes (an
 * MQTT 3.1.1 broker that closes the connection on a publish it does not authorize).
 *
 * Each case: the events after the refused one arrive within seconds, in order; the broker saw
 * the connections it should (one, where the refusal needs no reconnect); the refused event is
 * set aside in the journal with the broker's reason, counted, logged once per topic and
 * announced by a plc2mqtt.delivery.set_aside event published like any other.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Aedes } from "aedes";
import { afterEach, describe, expect, it } from "vitest";
import type { GatewayEvent } from "../../src/events/types.ts";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { isGatewayError } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { Publisher } from "../../src/publish/publisher.ts";
import { CLOSED_THREE_TIMES } from "../../src/publish/set-aside.ts";
import type { PublisherJournal } from "../../src/publish/types.ts";
import { type Subscriber, startMosquitto, subscribe } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { type CapturedLog, captureLog, mqttConfig, telemetry, testStatus } from "./fixtures.ts";
import { MemoryJournal, renderForTest } from "./memory-journal.ts";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** "Within seconds": how long the events after a refused one may take to arrive. */
const WITHIN_MS = 5000;

function on(subject: string, i: number, data?: GatewayEvent["data"]): GatewayEvent {
  return { ...telemetry(i), subject, ...(data ? { data } : {}) };
}

/** A 600-character value: its PUBLISH is over 540 bytes; every other event is far below. */
const big = (i: number) => on("recipe", i, { value: "r".repeat(600), reason: "change" });

async function realJournal(): Promise<Journal> {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-refusals-"));
  const journal = await openJournal({
    dir,
    gatewayId: "gw-1",
    maxBytes: 64 * 1024 * 1024,
    retentionMs: 86_400_000,
    commitIntervalMs: 10,
    commitMaxEvents: 1000,
    render: renderForTest,
    log: silentLogger(),
  });
  cleanup.push(async () => {
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return journal;
}

async function listen(url: string): Promise<Subscriber> {
  const sub = await subscribe(url, "test/#");
  cleanup.push(() => sub.close());
  return sub;
}

function start(
  journal: PublisherJournal,
  url: string,
  clientId: string,
  overrides: Record<string, unknown> = {},
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

interface Doc {
  id: string;
  sequence: string;
  type: string;
  data: Record<string, unknown>;
}

const docs = (sub: Subscriber, topic: string): Doc[] =>
  sub.messages.filter((m) => m.topic === topic).map((m) => JSON.parse(m.payload) as Doc);

/** The counter's events 1..n except `skip`, in order, arrived. */
async function theRestArrives(sub: Subscriber, expected: readonly number[]): Promise<void> {
  await eventually(
    () => docs(sub, "test/telemetry/counter").length >= expected.length,
    WITHIN_MS,
    "the events after the refused one",
  );
  expect(docs(sub, "test/telemetry/counter").map((d) => d.data.value)).toEqual(expected);
}

async function announced(sub: Subscriber, count = 1): Promise<Doc[]> {
  await eventually(
    () => docs(sub, "test/status/delivery").length >= count,
    WITHIN_MS,
    "the set-aside event",
  );
  return docs(sub, "test/status/delivery");
}

/** pino JSON lines at warn (level 40) with this message. */
function warnings(log: CapturedLog, message: RegExp): string[] {
  return log
    .text()
    .split("\n")
    .filter((line) => line.includes('"level":40') && message.test(line));
}

const SET_ASIDE_LOG = /refused an event for good/;

describe("an event larger than the broker takes", () => {
  it("is set aside unsent when the broker's CONNACK says its Maximum Packet Size: the rest arrives, one connection", async () => {
    const broker = await startMosquitto({ config: ["max_packet_size 540"] });
    cleanup.push(() => broker.stop());
    const sub = await listen(broker.url);
    const journal = await realJournal();
    const [, large] = await journal.append([
      telemetry(1),
      big(2),
      ...[3, 4, 5, 6, 7, 8].map((i) => telemetry(i)),
    ]);
    const { pub, log } = start(journal, broker.url, "pub-size");

    await theRestArrives(sub, [1, 3, 4, 5, 6, 7, 8]);
    const [notice] = await announced(sub);
    expect(notice!.data).toMatchObject({
      sequence: String(large!.sequence),
      event_id: large!.id,
      topic: "test/telemetry/recipe",
    });
    expect(notice!.data.reason).toMatch(
      /^Packet too large: \d+ bytes, the broker's Maximum Packet Size is 540$/,
    );
    expect(docs(sub, "test/telemetry/recipe")).toEqual([]);
    const setAside = journal.query({ setAside: true });
    expect(setAside.map((r) => r.sequence)).toEqual([large!.sequence]);
    expect(setAside[0]!.setAside!.reason).toBe(notice!.data.reason);
    expect(setAside[0]!.published).toBeUndefined();
    await eventually(() => journal.stats().pending === 0, WITHIN_MS, "nothing pending");
    expect(journal.stats().setAside).toBe(1);
    expect(pub.stats().setAside).toEqual({ packet_too_large: 1 });
    expect(warnings(log, SET_ASIDE_LOG)).toHaveLength(1);
    expect(pub.stats().reconnects).toBe(0);
    expect(broker.connections("pub-size")).toBe(1);
    expect(broker.output()).not.toMatch(/oversize/);
  });

  it("is set aside unsent over mqtt.max_packet_size, with a broker that has no limit (no round trip)", async () => {
    const broker = await startMosquitto();
    cleanup.push(() => broker.stop());
    const sub = await listen(broker.url);
    const journal = await realJournal();
    const [, large] = await journal.append([telemetry(1), big(2), telemetry(3), telemetry(4)]);
    const { pub } = start(journal, broker.url, "pub-configured", { max_packet_size: 540 });

    await theRestArrives(sub, [1, 3, 4]);
    const [notice] = await announced(sub);
    expect(notice!.data.reason).toMatch(
      /^Packet too large: \d+ bytes, mqtt.max_packet_size is 540$/,
    );
    expect(journal.query({ setAside: true }).map((r) => r.sequence)).toEqual([large!.sequence]);
    // the broker takes anything: had the event been sent, the subscriber would have it
    await eventually(() => journal.stats().pending === 0, WITHIN_MS, "nothing pending");
    expect(docs(sub, "test/telemetry/recipe")).toEqual([]);
    expect(broker.connections("pub-configured")).toBe(1);
    expect(pub.stats().reconnects).toBe(0);
  });
});

const DENY_SECRET = "topic readwrite test/status/#\ntopic readwrite test/telemetry/counter\n";

describe("an event over mosquitto's message_size_limit (a PUBACK 0x95 mqtt.js cannot parse)", () => {
  it("is set aside after 3 connections lost right after it", async () => {
    // MQTT 5 allows no 0x95 in a PUBACK: mqtt.js drops the connection on it, so the refusal
    // arrives as a connection lost right after the event, with no DISCONNECT
    const broker = await startMosquitto({ config: ["message_size_limit 300"] });
    cleanup.push(() => broker.stop());
    const sub = await listen(broker.url);
    const journal = await realJournal();
    const [, large] = await journal.append([telemetry(1), big(2), telemetry(3), telemetry(4)]);
    const { pub } = start(journal, broker.url, "pub-limit");

    const unique = () =>
      new Map(docs(sub, "test/telemetry/counter").map((d) => [d.id, d.data.value]));
    await eventually(() => unique().size >= 3, 15_000, "the rest");
    expect([...unique().values()]).toEqual([1, 3, 4]);
    const [notice] = await announced(sub);
    expect(notice!.data).toMatchObject({ event_id: large!.id, reason: CLOSED_THREE_TIMES });
    expect(journal.query({ setAside: true }).map((r) => r.sequence)).toEqual([large!.sequence]);
    expect(pub.stats().setAside).toEqual({ connection_closed: 1 });
    expect(broker.connections("pub-limit")).toBe(pub.stats().reconnects + 1);
    expect(pub.stats().reconnects).toBeGreaterThanOrEqual(3);
  });
});

describe("a publish the broker's ACL denies (MQTT 5 PUBACK 0x87)", () => {
  it("is set aside: the rest arrives on the same connection, one online status, logged once per topic", async () => {
    // mosquitto's default queue limit: with max_queued_messages 0 (the other tests' setting)
    // mosquitto 2.0 drops the connection after a denied QoS 1 publish (see the next test)
    const broker = await startMosquitto({
      acl: DENY_SECRET,
      config: ["max_queued_messages 1000"],
    });
    cleanup.push(() => broker.stop());
    const sub = await listen(broker.url);
    const journal = await realJournal();
    const [, first, , second] = await journal.append([
      telemetry(1),
      on("secret", 2),
      telemetry(3),
      on("secret", 4),
      ...[5, 6, 7, 8].map((i) => telemetry(i)),
    ]);
    const { pub, log } = start(journal, broker.url, "pub-acl");

    await theRestArrives(sub, [1, 3, 5, 6, 7, 8]);
    const notices = await announced(sub, 2);
    expect(notices.map((n) => n.data.event_id)).toEqual([first!.id, second!.id]);
    for (const n of notices) {
      expect(n.data).toMatchObject({
        topic: "test/telemetry/secret",
        reason: "the broker refused it: Not authorized (reason code 0x87)",
      });
    }
    const setAside = journal.query({ setAside: true });
    expect(setAside.map((r) => [r.sequence, r.setAside?.reason])).toEqual([
      [first!.sequence, "the broker refused it: Not authorized (reason code 0x87)"],
      [second!.sequence, "the broker refused it: Not authorized (reason code 0x87)"],
    ]);
    expect(pub.stats().setAside).toEqual({ not_authorized: 2 });
    expect(warnings(log, SET_ASIDE_LOG)).toHaveLength(1);
    expect(pub.stats().reconnects).toBe(0);
    expect(broker.connections("pub-acl")).toBe(1);
    // one session: one online status, and no will ever published
    const statuses = docs(sub, "test/status/gateway");
    expect(statuses.map((d) => d.data.status)).toEqual(["online"]);
  });
});

describe("a broker that drops the connection after a denial", () => {
  it("blames nothing it cannot tell: only the denied events are set aside, the rest arrives", async () => {
    // mosquitto 2.0 with max_queued_messages 0 sends PUBACK 0x87 and then resets the
    // connection ("Bad socket read/write"), with the records after it still in flight
    const broker = await startMosquitto({ acl: DENY_SECRET });
    cleanup.push(() => broker.stop());
    const sub = await listen(broker.url);
    const journal = await realJournal();
    const events = [telemetry(1)];
    for (let i = 2; i <= 30; i++) events.push(i % 5 === 0 ? on("secret", i) : telemetry(i));
    const appended = await journal.append(events);
    const denied = appended.filter((r) => r.subject === "secret").map((r) => r.sequence);
    const { pub } = start(journal, broker.url, "pub-reset");

    const expected = events.filter((e) => e.subject === "counter").map((e) => e.data.value);
    await eventually(
      () => new Set(docs(sub, "test/telemetry/counter").map((d) => d.id)).size >= expected.length,
      15_000,
      "the counter events",
    );
    const unique = new Map(docs(sub, "test/telemetry/counter").map((d) => [d.id, d.data.value]));
    expect([...unique.values()]).toEqual(expected);
    await eventually(() => journal.stats().pending === 0, WITHIN_MS, "nothing pending");
    expect(journal.query({ setAside: true }).map((r) => r.sequence)).toEqual(denied);
    expect(pub.stats().setAside).toEqual({ not_authorized: denied.length });
    expect(broker.output()).toMatch(/Bad socket read\/write on client pub-reset/);
  });
});

describe("an MQTT 3.1.1 broker that closes the connection on a publish it refuses (aedes)", () => {
  it(`sets the event aside after ${3} connections closed right after it, with no reason given`, async () => {
    const broker = await Aedes.createBroker();
    let connections = 0;
    broker.on("client", () => {
      connections += 1;
    });
    broker.authorizePublish = (_client, packet, done) =>
      done(packet.topic === "test/telemetry/secret" ? new Error("not authorized") : null);
    const server: Server = createServer((socket) => broker.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanup.push(async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const address = server.address();
    const url = `mqtt://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    const sub = await listen(url);
    const journal = new MemoryJournal();
    const [, refused] = await journal.append([
      telemetry(1),
      on("secret", 2),
      ...[3, 4, 5].map((i) => telemetry(i)),
    ]);
    const dbg = start(journal, url, "pub-v311");
    const { pub } = dbg;

    // resends of events the broker took but did not acknowledge are MQTT-legal duplicates
    const unique = () =>
      new Map(docs(sub, "test/telemetry/counter").map((d) => [d.id, d.data.value]));
    await eventually(() => unique().size >= 4, 15_000, "the rest");
    expect([...unique().values()]).toEqual([1, 3, 4, 5]);
    const closes = dbg.log
      .text()
      .split("\n")
      .filter((l) => l.includes("closed right after an event"))
      .map((l) => (JSON.parse(l) as { sequence: string; times: number }).times);
    expect(closes).toEqual([1, 2, 3]);
    const [notice] = await announced(sub);
    expect(notice!.data).toMatchObject({
      event_id: refused!.id,
      reason: CLOSED_THREE_TIMES,
    });
    expect(CLOSED_THREE_TIMES).toBe(
      "the broker closed the connection after this event 3 times (no reason given)",
    );
    expect(refused!.setAside?.reason).toBe(CLOSED_THREE_TIMES);
    expect(pub.stats().setAside).toEqual({ connection_closed: 1 });
    // three connections closed right after it alone; before that, at most one closed with
    // more in flight (then one record at a time), and one more connection goes on after it
    const reconnects = pub.stats().reconnects;
    expect(reconnects).toBeGreaterThanOrEqual(3);
    expect(reconnects).toBeLessThanOrEqual(5);
    expect(connections).toBe(reconnects + 1 + 1); // and the subscriber
  });
});

describe("a password without a user name", () => {
  it("is refused at construction", () => {
    let thrown: unknown;
    try {
      new Publisher({
        journal: new MemoryJournal(),
        mqtt: { ...mqttConfig("mqtt://127.0.0.1:1883"), password: "x" },
        clientId: "pub",
        status: testStatus,
        log: silentLogger(),
      });
    } catch (err) {
      thrown = err;
    }
    expect(isGatewayError(thrown, "CONFIG_INVALID")).toBe(true);
  });
});
