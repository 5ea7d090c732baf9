/**
 * The event sink against the real journal: a batch too large for the journal is split, not
 * retried forever; an event the journal cannot take is dropped alone, not in front of every
 * event behind it; a push that lands while the loop ends is not stranded.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventSink } from "../../src/app/event-sink.ts";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { event, events, options, tempDir } from "../journal/helpers.ts";
import { assertValidEvent } from "../support/event-schema.ts";
import { eventually } from "../support/resources.ts";

describe("EventSink", () => {
  let tmp: ReturnType<typeof tempDir>;
  let journal: Journal;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(async () => {
    await journal?.close();
    tmp.remove();
  });

  it("splits a batch the journal finds too large and journals all of it, in order", async () => {
    journal = await openJournal(options(tmp.dir, { maxBytes: 16 * 1024 * 1024 }));
    const sink = new EventSink({ journal, log: silentLogger(), gatewayId: "gw-1" });
    const input = events(2500, { data: { value: "x".repeat(400) } });
    sink.push(input);
    await sink.flush();
    expect(sink.appended).toBe(2500);
    expect(sink.dropped).toBe(0);
    const stored = journal.query({ limit: 10_000 });
    expect(stored.map((r) => r.time)).toEqual(input.map((e) => e.time));
  });

  it("drops only the event the journal cannot render, and journals every other one", async () => {
    journal = await openJournal(options(tmp.dir));
    const sink = new EventSink({ journal, log: silentLogger(), gatewayId: "gw-1" });
    const poison = event({ data: { value: [1, Number.NaN] } }); // JSON cannot carry it
    const before = events(5);
    const after = events(5);
    sink.push([...before, poison, ...after]);
    await sink.flush();
    expect(sink.dropped).toBe(1);
    expect(sink.appended).toBe(10);
    const stored = journal.query({ limit: 100 });
    const overflow = stored.filter((r) => r.type === "plc2mqtt.journal.overflow");
    const kept = stored.filter((r) => r.type !== "plc2mqtt.journal.overflow");
    expect(kept.map((r) => r.time)).toEqual([...before, ...after].map((e) => e.time));
    // the drop is announced like the journal's own size policy announces it
    expect(overflow).toHaveLength(1);
    assertValidEvent(overflow[0]!.payload);
    const data = JSON.parse(overflow[0]!.payload).data;
    expect(data.dropped).toBe(1);
    expect(BigInt(data.oldest_kept_sequence)).toBe(
      stored.find((r) => r.time === after[0]!.time)!.sequence,
    );
  });

  it("does not strand a push that lands as the loop ends", async () => {
    journal = await openJournal(options(tmp.dir));
    const sink = new EventSink({ journal, log: silentLogger(), gatewayId: "gw-1" });
    sink.push(events(1));
    // at every microtask depth while the first append settles
    for (let depth = 0; depth < 20; depth++) {
      let p = Promise.resolve();
      for (let i = 0; i < depth; i++) p = p.then(() => {});
      void p.then(() => sink.push(events(1)));
    }
    await eventually(() => sink.appended === 21 && sink.queued === 0, 5000, "every push journaled");
  });
});
