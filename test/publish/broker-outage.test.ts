/**
 * A broker that vanishes mid-stream loses nothing on the publisher's side: after it comes back,
 * the publisher resends from the oldest unacknowledged record, so every record arrives in order
 * and only records in flight at the stop are sent twice (same payload, same id).
 */
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/lib/logger.ts";
import { Publisher } from "../../src/publish/publisher.ts";
import { type Broker, type Subscriber, startMosquitto, subscribe } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { expectCompleteInOrder } from "./checks.ts";
import { mqttConfig, telemetry, testStatus } from "./fixtures.ts";
import { MemoryJournal } from "./memory-journal.ts";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface Outage {
  broker: Broker;
  journal: MemoryJournal;
  pub: Publisher;
  /** Sequences handed to the publisher before the outage, and those acknowledged by then. */
  handedBefore: Set<bigint>;
  markedBefore: Set<bigint>;
}

/** Publishes `total` records, takes the broker down after `at` PUBACKs, brings it back. */
async function runOutage(
  how: "stop" | "kill",
  total: number,
  at: number,
  beforeStart: (broker: Broker) => Promise<void> = async () => {},
): Promise<Outage> {
  const broker = await startMosquitto({ persistence: true });
  cleanup.push(() => broker.stop());
  await beforeStart(broker);
  const journal = new MemoryJournal();
  const pub = new Publisher({
    journal,
    mqtt: mqttConfig(broker.url),
    clientId: "pub-outage",
    status: testStatus,
    log: silentLogger(),
  });
  cleanup.push(() => pub.stop());
  await journal.append(Array.from({ length: total }, (_, i) => telemetry(i)));
  let marked = 0;
  let down: Promise<void> | undefined;
  journal.onMarked = (sequences) => {
    marked += sequences.length;
    if (marked >= at && !down) down = how === "stop" ? broker.stop() : broker.kill();
  };
  pub.start();
  await eventually(() => down !== undefined, 15_000, "the outage to begin");
  await down;
  await eventually(() => !pub.connected, 10_000, "the publisher to see the outage");
  const handedBefore = new Set(journal.handedOut.keys());
  const markedBefore = new Set(
    journal.records.filter((r) => r.published === true).map((r) => r.sequence),
  );
  // Events keep coming while the broker is away.
  await journal.append(Array.from({ length: 500 }, (_, i) => telemetry(total + i)));
  await broker.start();
  await eventually(() => journal.pending === 0, 20_000, "every record published");
  return { broker, journal, pub, handedBefore, markedBefore };
}

function expectResendsOnlyOfInFlight(o: Outage): void {
  const resent = [...o.journal.handedOut].filter(([, n]) => n > 1).map(([s]) => s);
  for (const s of resent) {
    expect(o.handedBefore.has(s)).toBe(true); // it had been sent before the outage
    expect(o.markedBefore.has(s)).toBe(false); // and was not acknowledged
  }
  expect(resent.length).toBeLessThanOrEqual(100); // at most one window (max_in_flight)
  expect(o.pub.stats().resent).toBe(resent.length);
  expect(o.pub.stats().reconnects).toBeGreaterThanOrEqual(1);
}

describe("Publisher across broker outages", () => {
  it("broker stopped mid-stream and restarted: every record arrives, in order", async () => {
    let sub: Subscriber | undefined;
    const total = 20_000;
    const o = await runOutage("stop", total, 3000, async (broker) => {
      // A persistent session on a persistent broker: what the broker acknowledged before the
      // stop is delivered after the restart.
      sub = await subscribe(broker.url, "test/telemetry/#", { sessionId: "outage-sub" });
      cleanup.push(() => sub!.close());
    });
    expectResendsOnlyOfInFlight(o);
    const expected = o.journal.records
      .filter((r) => r.type.endsWith("telemetry"))
      .map((r) => Number(r.sequence));
    await sub!.waitFor(expected.length, 20_000);
    // Duplicates at the subscriber: the publisher's resends, or the broker's own redelivery of
    // what it had in flight to the subscriber. Either way identical bytes (checked inside).
    expectCompleteInOrder(sub!.messages, expected);
  });

  it("broker killed (SIGKILL) mid-stream: the journal is drained once it is back", async () => {
    const o = await runOutage("kill", 20_000, 3000);
    expectResendsOnlyOfInFlight(o);
    expect(o.journal.records.every((r) => r.published === true)).toBe(true);
  });
});
