/**
 * The rules by which a lost connection or repeated refusals name a record (publish/set-aside.ts),
 * case by case, on the array journal. The brokers at hand cannot show every case: mosquitto
 * announces its Maximum Packet Size, so the publisher never sends it a packet it would answer
 * with DISCONNECT 0x95; refusals.test.ts shows the cases real brokers produce.
 */
import { describe, expect, it } from "vitest";
import { EVENT_TYPES } from "../../src/events/types.ts";
import { CLOSED_THREE_TIMES, RIGHT_AFTER_MS, SetAsideKeeper } from "../../src/publish/set-aside.ts";
import type { OutboundRecord } from "../../src/publish/types.ts";
import { captureLog, telemetry, testStatus } from "./fixtures.ts";
import { MemoryJournal } from "./memory-journal.ts";

async function setup(count = 3) {
  const journal = new MemoryJournal();
  const records = await journal.append(
    Array.from({ length: count }, (_, i) => ({ ...telemetry(i + 1), subject: `tag${i % 2}` })),
  );
  const log = captureLog();
  const keeper = new SetAsideKeeper({ journal, status: testStatus, log: log.log });
  return { journal, records, keeper, log };
}

const NOW = 1_000_000;

function lostAfter(record: OutboundRecord, extra: Partial<Parameters<SetAsideKeeper["lost"]>[0]>) {
  return {
    suspect: record,
    sentAt: NOW - 5,
    inFlight: 1,
    now: NOW,
    statusInFlight: false,
    ours: false,
    ...extra,
  };
}

const announcements = (journal: MemoryJournal) =>
  journal.records.filter((r) => r.type === EVENT_TYPES.deliverySetAside);

describe("a connection lost right after a record", () => {
  it("DISCONNECT 0x95 with the record alone in flight: set aside at once", async () => {
    const { journal, records, keeper } = await setup();
    expect(keeper.lost(lostAfter(records[1]!, { disconnectCode: 0x95 }))).toBe(true);
    expect(records[1]!.setAside?.reason).toBe(
      "the broker disconnected right after this event: Packet too large (DISCONNECT reason code 0x95)",
    );
    expect(keeper.stats()).toEqual({ packet_too_large: 1 });
    expect(announcements(journal)).toHaveLength(1);
  });

  it("with more than one thing in flight: nothing is blamed, the next connection is careful", async () => {
    const { records, keeper } = await setup();
    expect(keeper.lost(lostAfter(records[0]!, { disconnectCode: 0x95, inFlight: 2 }))).toBe(true);
    expect(
      keeper.lost(lostAfter(records[0]!, { disconnectCode: 0x95, statusInFlight: true })),
    ).toBe(true);
    for (let i = 0; i < 5; i++) keeper.lost(lostAfter(records[0]!, { inFlight: 3 }));
    expect(records[0]!.setAside).toBeUndefined();
    expect(keeper.stats()).toEqual({});
  });

  it("closed with no reason, alone in flight: set aside on the third time running", async () => {
    const { records, keeper } = await setup();
    const r = records[2]!;
    expect(keeper.lost(lostAfter(r, {}))).toBe(true);
    expect(keeper.lost(lostAfter(r, {}))).toBe(true);
    expect(r.setAside).toBeUndefined();
    expect(keeper.lost(lostAfter(r, {}))).toBe(true);
    expect(r.setAside?.reason).toBe(CLOSED_THREE_TIMES);
    expect(keeper.stats()).toEqual({ connection_closed: 1 });
  });

  it("the count runs only while nothing else happens to that record", async () => {
    const { records, keeper } = await setup();
    const [a, b] = records;
    keeper.lost(lostAfter(a!, {}));
    keeper.lost(lostAfter(a!, {}));
    keeper.lost(lostAfter(b!, {})); // another record: a's run ends
    keeper.lost(lostAfter(a!, {}));
    keeper.lost(lostAfter(a!, {}));
    keeper.acknowledged(a!.sequence); // it got through after all
    keeper.lost(lostAfter(a!, {}));
    keeper.lost(lostAfter(a!, {}));
    keeper.lost(lostAfter(a!, { disconnectCode: 0x8b })); // server shutting down: not about it
    keeper.lost(lostAfter(a!, {}));
    keeper.lost(lostAfter(a!, { sentAt: NOW - RIGHT_AFTER_MS - 1 })); // not right after
    keeper.lost(lostAfter(a!, {}));
    keeper.lost(lostAfter(a!, { ours: true })); // the gateway dropped it itself
    keeper.lost(lostAfter(a!, {}));
    expect(a!.setAside).toBeUndefined();
    expect(b!.setAside).toBeUndefined();
  });

  it("not right after, not about a packet, or dropped by the gateway: no careful mode either", async () => {
    const { records, keeper } = await setup();
    const r = records[0]!;
    expect(keeper.lost(lostAfter(r, { sentAt: NOW - RIGHT_AFTER_MS - 1 }))).toBe(false);
    expect(keeper.lost(lostAfter(r, { disconnectCode: 0x8e }))).toBe(false);
    expect(keeper.lost(lostAfter(r, { ours: true }))).toBe(false);
    expect(keeper.lost({ inFlight: 0, now: NOW, statusInFlight: false, ours: false })).toBe(false);
  });
});

describe("repeated vague refusals", () => {
  it("set the record aside on the third in a row", async () => {
    const { records, keeper } = await setup();
    const r = records[0]!;
    expect(keeper.refusedAgain(r, 0x80)).toBe(false);
    expect(keeper.refusedAgain(r, 0x80)).toBe(false);
    expect(keeper.refusedAgain(r, 0x80)).toBe(true);
    expect(r.setAside?.reason).toBe(
      "the broker refused this event 3 times running: Unspecified error (reason code 0x80)",
    );
    expect(keeper.stats()).toEqual({ refused: 1 });
  });

  it("start again after a PUBACK", async () => {
    const { records, keeper } = await setup();
    const r = records[0]!;
    keeper.refusedAgain(r, 0x83);
    keeper.refusedAgain(r, 0x83);
    keeper.acknowledged(r.sequence);
    expect(keeper.refusedAgain(r, 0x83)).toBe(false);
    expect(r.setAside).toBeUndefined();
  });
});

describe("setting aside", () => {
  it("logs at warn once per topic, announces each one, but never announces an announcement", async () => {
    const { journal, records, keeper, log } = await setup(4);
    for (const r of records) keeper.setAside(r, "not_authorized", "the broker refused it");
    const warned = log
      .text()
      .split("\n")
      .filter((l) => l.includes('"level":40'));
    expect(warned).toHaveLength(2); // tag0 and tag1
    await new Promise((r) => setImmediate(r));
    const notices = announcements(journal);
    expect(notices.map((n) => JSON.parse(n.payload).data.event_id)).toEqual(
      records.map((r) => r.id),
    );
    keeper.setAside(notices[0]!, "not_authorized", "the broker refused it");
    await new Promise((r) => setImmediate(r));
    expect(notices[0]!.setAside).toBeDefined();
    expect(announcements(journal)).toHaveLength(records.length);
  });
});
