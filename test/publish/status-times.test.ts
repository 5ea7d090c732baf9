/**
 * Gateway status times across a broker outage (issue 8, point 4): a real mosquitto is away when
 * the publisher starts, comes up, is stopped for a few seconds and started again; then the
 * publisher stops cleanly. Each status event's time must lie within the interval the
 * publisher's own log gives for that moment:
 * - `online`: after the last "MQTT connect failed" before its session (and after the start of
 *   the attempt that succeeded), at or before "MQTT connected";
 * - the last will: `time` = `data.since` = the start of the session it ends (within that
 *   session's connect interval), not the moment of loss, not the episode start long before;
 * - the clean `offline`: between the stop() call and its end.
 * Real journal, real CloudEvents rendering, the product's status events; every message on the
 * status topic is validated against the events schema.
 */
import { rmSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { gatewayStatusEvents } from "../../src/app/status-events.ts";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { Publisher } from "../../src/publish/publisher.ts";
import { GATEWAY, options, render, tempDir } from "../journal/helpers.ts";
import { assertValidEvent } from "../support/event-schema.ts";
import { type Broker, type Subscriber, startMosquitto, subscribe } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { captureLog, mqttConfig } from "./fixtures.ts";

const STATUS_TOPIC = `plant/${GATEWAY}/status/${GATEWAY}`;

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface LogLine {
  time: number;
  msg: string;
}

interface StatusDoc {
  id: string;
  sequence: string;
  time: string;
  data: { status: string; since?: string; last_will?: boolean };
}

const at = (doc: StatusDoc) => Date.parse(doc.time);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("gateway status times across a broker outage", () => {
  it("online, the will and the clean offline each say a time the gateway's log agrees with", async () => {
    const broker: Broker = await startMosquitto({ persistence: true });
    cleanup.push(() => rmSync(broker.dir, { recursive: true, force: true }));
    cleanup.push(() => broker.stop());
    // A persistent session on a persistent broker: nothing on the status topic is missed
    // across the restarts, the will included.
    const sub: Subscriber = await subscribe(broker.url, `${STATUS_TOPIC}/#`, {
      sessionId: "status-times-sub",
    });
    cleanup.push(() => sub.close());
    await broker.stop(); // the gateway starts while the broker is away

    const tmp = tempDir();
    cleanup.push(() => tmp.remove());
    const journal: Journal = await openJournal(options(tmp.dir));
    cleanup.push(() => journal.close());
    const captured = captureLog("debug");
    const lines = (): LogLine[] =>
      captured
        .text()
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => {
          const line = JSON.parse(l) as { time: string; msg: string };
          return { time: Date.parse(line.time), msg: line.msg }; // pino: ISO time, ms
        });
    const logged = (msg: string) => lines().filter((l) => l.msg === msg);
    const status = gatewayStatusEvents(
      { gatewayId: GATEWAY, version: "0.0.0-test", startedAt: Date.now(), now: Date.now },
      render,
    );
    const pub = new Publisher({
      journal,
      mqtt: mqttConfig(broker.url),
      clientId: "status-times",
      status,
      log: captured.log,
    });
    cleanup.push(() => pub.stop());

    // 1. Episode start with the broker away: attempts fail for a while.
    pub.start();
    await eventually(() => logged("MQTT connect failed").length >= 3, 10_000, "failed attempts");
    await sleep(500);
    // What the journal holds meanwhile is true now: the gateway is not connected.
    const reserved = journal.query({ type: "plc2mqtt.gateway.status" });
    expect(reserved.map((r) => JSON.parse(r.payload).data.status)).toEqual(["offline"]);
    expect(reserved[0]!.time).toBeLessThanOrEqual(logged("MQTT connect failed")[0]!.time);

    // 2. The broker comes up: session 1. It lasts a while, so its start is not its end.
    await broker.start();
    await eventually(() => logged("MQTT connected").length === 1, 10_000, "session 1");
    await eventually(() => journal.stats().pending === 0, 10_000, "session 1 drained");
    await sleep(1500);

    // 3. Outage: the broker stops (its shutdown publishes the will), attempts fail, it returns.
    await broker.stop();
    await eventually(() => logged("MQTT connection lost").length === 1, 10_000, "the loss");
    await eventually(() => logged("MQTT connect failed").length >= 6, 10_000, "failures");
    await sleep(2000);
    await broker.start();
    await eventually(() => logged("MQTT connected").length === 2, 10_000, "session 2");
    await eventually(() => journal.stats().pending === 0, 10_000, "session 2 drained");

    // 4. Clean stop.
    const stopCalled = Date.now();
    await pub.stop();
    const stopEnded = Date.now();

    const isWill = (m: { payload: string }) =>
      (JSON.parse(m.payload) as StatusDoc).id.includes("-will-");
    await eventually(
      () => sub.messages.some(isWill) && sub.messages.filter((m) => !isWill(m)).length >= 3,
      15_000,
      "two onlines, the will and the clean offline",
    );
    const docs = sub.messages.map((m) => {
      const doc = JSON.parse(m.payload) as StatusDoc;
      assertValidEvent(doc);
      return doc;
    });
    // de-duplicated by id (a re-send carries the same content)
    const byId = new Map<string, StatusDoc>();
    for (const doc of docs) {
      const seen = byId.get(doc.id);
      if (seen) expect(doc).toEqual(seen);
      byId.set(doc.id, doc);
    }
    const unique = [...byId.values()];
    const onlines = unique.filter((d) => d.data.status === "online");
    const wills = unique.filter((d) => d.id.includes("-will-"));
    const offlines = unique.filter((d) => d.data.status === "offline" && !d.id.includes("-will-"));
    expect(onlines).toHaveLength(2);
    expect(wills).toHaveLength(1);
    expect(offlines).toHaveLength(1);

    const connected = logged("MQTT connected").map((l) => l.time);
    const failed = logged("MQTT connect failed").map((l) => l.time);
    const attempts = logged("MQTT connecting").map((l) => l.time);
    const lost = logged("MQTT connection lost")[0]!.time;
    /** The session's connect interval: [start of the attempt that succeeded, "MQTT connected"]. */
    const session = (k: number) => {
      const end = connected[k]!;
      const lastFailed = Math.max(...failed.filter((t) => t <= end));
      const attempt = Math.max(...attempts.filter((t) => t <= end));
      return { lastFailed, attempt, end };
    };

    // Each online: at or after the last failure before it, at or before "MQTT connected".
    for (const [k, online] of onlines.entries()) {
      const s = session(k);
      expect(at(online), `online ${k + 1} vs its last failed attempt`).toBeGreaterThanOrEqual(
        s.lastFailed,
      );
      expect(at(online), `online ${k + 1} vs its attempt`).toBeGreaterThanOrEqual(s.attempt);
      expect(at(online), `online ${k + 1} vs "MQTT connected"`).toBeLessThanOrEqual(s.end);
    }
    // The will ends session 1: its sequence, its own id, the time that session started.
    const [will] = wills;
    const s1 = session(0);
    expect(will!.sequence).toBe(onlines[0]!.sequence);
    // its id names the attempt that opened session 1: every attempt of the episode counted
    const attempt = attempts.filter((t) => t <= s1.end).length;
    expect(will!.id).toBe(onlines[0]!.id.replace(/-(\d+)$/, `-will-${attempt}-$1`));
    expect(will!.data).toMatchObject({ status: "offline", last_will: true, since: will!.time });
    expect(at(will!), "the will vs the last failure before session 1").toBeGreaterThanOrEqual(
      s1.lastFailed,
    );
    expect(at(will!), "the will vs the attempt that opened session 1").toBeGreaterThanOrEqual(
      s1.attempt,
    );
    expect(at(will!), 'the will vs session 1\'s "MQTT connected"').toBeLessThanOrEqual(s1.end);
    expect(at(will!)).toBeLessThan(lost); // no claim about the moment of loss
    // The clean offline: within stop().
    expect(at(offlines[0]!)).toBeGreaterThanOrEqual(stopCalled);
    expect(at(offlines[0]!)).toBeLessThanOrEqual(stopEnded);
    // Sequence order: online 1, (the will repeats it), online 2, the clean offline.
    const sequences = [onlines[0]!, onlines[1]!, offlines[0]!].map((d) => BigInt(d.sequence));
    expect(sequences[0]! < sequences[1]! && sequences[1]! < sequences[2]!).toBe(true);
    // What went out is what the journal holds under each id.
    const journaled = new Map(
      journal.query({ type: "plc2mqtt.gateway.status" }).map((r) => [r.id, r.payload]),
    );
    for (const doc of [...onlines, ...offlines])
      expect(JSON.parse(journaled.get(doc.id)!)).toEqual(doc);
  }, 60_000);
});
