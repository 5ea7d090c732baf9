/**
 * The event sink against the real journal: a batch too large for the journal is split, not
 * retried forever; an event the journal cannot take is dropped alone, not in front of every
 * event behind it; a push that lands while the loop ends is not stranded. At its limit, with a
 * journal whose disk refuses and then accepts: the batch in flight is never dropped, only events
 * waiting behind it are, and every gap is announced exactly (issue 8).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventSink } from "../../src/app/event-sink.ts";
import type { GatewayEvent } from "../../src/events/types.ts";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { event, events, options, tempDir } from "../journal/helpers.ts";
import { assertValidEvent } from "../support/event-schema.ts";
import { eventually } from "../support/resources.ts";
import { expectStreamWithGaps, keptTimes, RefusingJournal } from "./sink-fixtures.ts";

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

  it("counts the commit interval from the push: an event held while the append before it commits waits one interval, not two", async () => {
    const interval = 3000;
    journal = await openJournal(options(tmp.dir, { commitIntervalMs: interval }));
    const sink = new EventSink({ journal, log: silentLogger(), gatewayId: "gw-1" });
    sink.push(events(1)); // the journal is idle: committed at once
    await sink.flush();
    sink.push(events(1)); // B: appended now, committed one interval later
    await new Promise((r) => setTimeout(r, 300));
    const heldAt = performance.now();
    sink.push(events(1)); // C: held by the sink until B is committed
    await sink.flush();
    const waited = performance.now() - heldAt;
    // C's interval ends 3 s after its push (2.7 s after B's commit); counted from its append,
    // after B's commit, it would end 5.7 s after the push
    expect(waited).toBeGreaterThan(interval - 100);
    expect(waited).toBeLessThan(interval + 1300);
    expect(sink.appended).toBe(3);
  }, 15_000);

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

  describe("at its limit, with a journal that refuses, then accepts", () => {
    const times = (list: readonly GatewayEvent[]) => list.map((e) => e.time);
    const sequenceOf = (e: GatewayEvent) =>
      journal.query({ limit: 1000 }).find((r) => r.time === e.time)!.sequence;
    const pushEach = (sink: EventSink, list: readonly GatewayEvent[]) => {
      for (const e of list) sink.push([e]);
    };
    /** A sink on the real journal behind a disk that refuses while `disk.refuse` says so. */
    const refusingSink = async (maxQueued: number, maxBatch: number) => {
      journal = await openJournal(options(tmp.dir));
      const disk = new RefusingJournal(journal);
      const sink = new EventSink({
        journal: disk,
        log: silentLogger(),
        gatewayId: "gw-1",
        maxQueued,
        maxBatch,
      });
      return { disk, sink };
    };

    it("drops only waiting events, never the batch in flight (14 pushed, 10 kept, 4 named)", async () => {
      const { disk, sink } = await refusingSink(10, 10);
      disk.refuse = () => true;
      const early = events(10);
      pushEach(sink, early); // the first one's append is refused and owned by the retry
      expect(disk.refusals).toBeGreaterThan(0);
      expect(sink.dropped).toBe(0);
      const late = events(4);
      let pushedLate = false;
      disk.onAccepted = () => {
        if (pushedLate) return;
        pushedLate = true;
        pushEach(sink, late); // while the retried append is in flight
      };
      disk.refuse = () => false;
      await sink.flush();
      expect(pushedLate).toBe(true);
      expect(sink.dropped).toBe(4);
      expect(sink.queued).toBe(0);
      const stored = journal.query({ limit: 1000 });
      // the in-flight event and everything behind the gap, the 4 newest included
      expect(keptTimes(stored)).toEqual(times([early[0]!, ...early.slice(5), ...late]));
      const notices = expectStreamWithGaps([...early, ...late], stored);
      expect(notices).toHaveLength(1);
      expect(notices[0]!.dropped).toBe(4);
      expect(notices[0]!.oldestKept).toBe(sequenceOf(early[5]!));
    });

    it("announces each gap of a batched stream with its own count and oldest kept sequence", async () => {
      const { disk, sink } = await refusingSink(8, 4);
      const [a, b, c, d, e] = [events(3), events(3), events(3), events(3), events(3)];
      const f = events(6);
      disk.refuse = () => true;
      sink.push(a); // in flight, refused, retried as a unit
      sink.push(b);
      sink.push(c);
      sink.push(d); // 12 held: the 4 oldest waiting (b, c[0]) go
      expect(sink.dropped).toBe(4);
      let accepted = 0;
      disk.onAccepted = () => {
        accepted++;
        if (accepted === 1) sink.push(e); // a in flight: c[1], c[2], d[0] go, next to the first gap
        if (accepted === 2) sink.push(f); // d[1..2], e[0..1] in flight: e[2], f[0..1] go
      };
      disk.refuse = () => false;
      await sink.flush();
      expect(sink.dropped).toBe(10);
      const stored = journal.query({ limit: 1000 });
      expect(keptTimes(stored)).toEqual(times([...a, d[1]!, d[2]!, e[0]!, e[1]!, ...f.slice(2)]));
      const notices = expectStreamWithGaps([...a, ...b, ...c, ...d, ...e, ...f], stored);
      expect(notices.map((n) => [n.dropped, n.oldestKept])).toEqual([
        [7, sequenceOf(d[1]!)],
        [3, sequenceOf(f[2]!)],
      ]);
      // each notice follows the batch that holds the event it names
      expect(notices[0]!.sequence).toBe(sequenceOf(e[1]!) + 1n);
    });

    it("keeps a notice the journal refuses with its own oldest kept sequence", async () => {
      const { disk, sink } = await refusingSink(10, 10);
      disk.refuse = () => true;
      const early = events(10);
      pushEach(sink, early);
      const late = events(4);
      disk.onAccepted = () => {
        disk.onAccepted = () => {};
        pushEach(sink, late);
      };
      let noticeRefused = false;
      disk.refuse = (batch) => {
        if (noticeRefused || !batch.some((x) => x.type === "plc2mqtt.journal.overflow"))
          return false;
        noticeRefused = true;
        return true;
      };
      await sink.flush();
      expect(noticeRefused).toBe(true);
      const after = events(3); // a later batch must not lend the notice its first record
      sink.push(after);
      await sink.flush();
      const stored = journal.query({ limit: 1000 });
      const notices = expectStreamWithGaps([...early, ...late, ...after], stored);
      expect(notices).toHaveLength(1);
      expect(notices[0]).toMatchObject({ dropped: 4, oldestKept: sequenceOf(early[5]!) });
      expect(sink.dropped).toBe(4);
    });

    it("joins a refused event and the waiting events dropped right after it into one gap", async () => {
      const { disk, sink } = await refusingSink(5, 10);
      const a = event();
      const poison = event({ data: { value: [1, Number.NaN] } }); // JSON cannot carry it
      const b = events(5);
      disk.refuse = () => true;
      sink.push([a, poison]); // in flight
      pushEach(sink, b); // b[0], b[1] go
      disk.refuse = () => false;
      await sink.flush();
      expect(sink.dropped).toBe(3);
      const stored = journal.query({ limit: 1000 });
      expect(keptTimes(stored)).toEqual(times([a, ...b.slice(2)]));
      const notices = expectStreamWithGaps([a, poison, ...b], stored);
      expect(notices.map((n) => [n.dropped, n.oldestKept])).toEqual([[3, sequenceOf(b[2]!)]]);
    });

    it("names a gap at the end of the stream once the next event is kept", async () => {
      const { disk, sink } = await refusingSink(5, 10);
      const held = events(5);
      const lost = events(2);
      disk.refuse = () => true;
      sink.push(held); // in flight, as many as maxQueued: nothing waits behind it
      pushEach(sink, lost);
      expect(sink.dropped).toBe(2);
      disk.refuse = () => false;
      await sink.flush();
      expect(keptTimes(journal.query({ limit: 1000 }))).toEqual(times(held));
      expect(
        journal.query({ limit: 1000 }).filter((r) => r.type === "plc2mqtt.journal.overflow"),
      ).toEqual([]);
      const next = event();
      sink.push([next]);
      await sink.flush();
      const notices = expectStreamWithGaps(
        [...held, ...lost, next],
        journal.query({ limit: 1000 }),
      );
      expect(notices.map((n) => [n.dropped, n.oldestKept])).toEqual([[2, sequenceOf(next)]]);
    });
  });
});
