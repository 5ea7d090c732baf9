/**
 * Regression: a record skipped as corrupt above the publisher's cursor made it spin at 100%
 * CPU (waitForAppend resolved at once, unpublished() returned nothing), freezing every timer of
 * the daemon. The publisher must publish what is readable and go on waiting like a normal,
 * idle publisher. (Fresh records reach the publisher from memory: the damage is done to a
 * journal that is closed, so that the reopened one reads its backlog from the file.)
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { Publisher } from "../../src/publish/index.ts";
import { events, options, tempDir } from "../journal/helpers.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { mqttConfig, testStatus } from "./fixtures.ts";

describe("publisher and a corrupt journal record", () => {
  let tmp: ReturnType<typeof tempDir>;
  let journal: Journal;
  let broker: Broker;
  beforeEach(async () => {
    tmp = tempDir();
    broker = await startMosquitto();
  });
  afterEach(async () => {
    await journal?.close();
    await broker.stop();
    tmp.remove();
  });

  it("publishes the readable records and keeps the event loop free", async () => {
    const seeded = await openJournal(options(tmp.dir));
    const records = await seeded.append(events(3));
    await seeded.close();
    // damage the newest record's checksum behind the journal's back
    const db = new DatabaseSync(join(tmp.dir, "journal.sqlite"));
    db.prepare("UPDATE records SET crc = crc + 1 WHERE sequence = ?").run(records[2]!.sequence);
    db.close();
    journal = await openJournal(options(tmp.dir));
    await broker.stop(); // the publisher starts while the broker is away
    const publisher = new Publisher({
      journal,
      mqtt: mqttConfig(broker.url),
      clientId: "corrupt-test",
      status: testStatus,
      log: silentLogger(),
    });
    publisher.start(); // journals its online status after the backlog
    await eventually(() => journal.lastSequence() === 4n, 5000, "the online status");
    await broker.start();
    try {
      await eventually(() => publisher.stats().published >= 3, 10_000, "the readable records");
      // a spinning drain would starve timers: these must keep firing
      let ticks = 0;
      const timer = setInterval(() => ticks++, 20);
      await new Promise((r) => setTimeout(r, 500));
      clearInterval(timer);
      expect(ticks).toBeGreaterThan(5);
      expect(journal.unpublished(0n, 10)).toEqual([]);
      expect(journal.stats().corruptSkipped).toBe(1);
    } finally {
      await publisher.stop(2000);
    }
  });
});
