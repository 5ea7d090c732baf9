/**
 * Crashes: the gateway is killed with SIGKILL 20 times at random moments under load and started
 * again each time. The subscriber sees every event that the journal had committed, in order;
 * the only duplicates are re-sends with the same id and the same content.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import {
  deduplicate,
  isWill,
  journalRecords,
  type Plant,
  startGateway,
  startPlant,
  startSubscriber,
  waitUntil,
  writeGatewayConfig,
} from "./harness.ts";

const KILLS = 20;

describe("kill -9", () => {
  let broker: Broker;
  let plant: Plant;

  beforeAll(async () => {
    broker = await startMosquitto();
    plant = await startPlant();
  });
  afterAll(async () => {
    await plant?.close();
    await broker?.stop();
  });

  it(`loses no committed event across ${KILLS} SIGKILLs under load`, async () => {
    const files = writeGatewayConfig(plant.sim.port, broker.url);
    const sub = await startSubscriber(broker.url, `${files.base}/#`);
    plant.run(10);
    let gateway = startGateway(files.config);
    try {
      const onlineIds = () =>
        new Set(
          sub.messages
            .filter(
              (m) => m.event.data.status === "online" && m.event.type === "plc2mqtt.gateway.status",
            )
            .map((m) => m.event.id),
        ).size;
      for (let i = 0; i < KILLS; i++) {
        // wait until this run is online and publishing, then kill it at a random moment
        await waitUntil(() => onlineIds() > i, 20_000, `run ${i} to come online`);
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 700));
        await gateway.kill();
        gateway = startGateway(files.config);
      }
      plant.pause();
      await new Promise((r) => setTimeout(r, 300));
      const last = plant.changes & 0xffff;
      await waitUntil(
        () =>
          sub.messages.some((m) => m.event.subject === "counter" && m.event.data.value === last),
        30_000,
        "the last change to arrive",
      );
      expect(await gateway.stop()).toBe(0);
      await waitUntil(
        () =>
          sub.messages.some(
            (m) => m.event.data.status === "offline" && !m.event.id.includes("-will-"),
          ),
        10_000,
        "offline",
      );
    } finally {
      plant.pause();
      await gateway.kill();
      await sub.close();
    }

    const journal = await journalRecords(files.dataDir);
    const stream = deduplicate(sub.messages).filter((m) => !isWill(m)); // throws on an id re-sent with other content
    const received = new Set(stream.map((m) => BigInt(m.event.sequence)));
    expect(journal.filter((s) => !received.has(s))).toEqual([]);
    // in order: de-duplicated, the stream's sequences only go up
    const sequences = stream.map((m) => BigInt(m.event.sequence));
    for (let i = 1; i < sequences.length; i++) expect(sequences[i]! > sequences[i - 1]!).toBe(true);
    // the wills the broker sent for the crashed sessions
    expect(sub.messages.filter(isWill).length).toBeGreaterThan(0);
    const onlines = stream.filter(
      (m) => m.event.type === "plc2mqtt.gateway.status" && m.event.data.status === "online",
    );
    expect(new Set(onlines.map((m) => m.event.data.started_at)).size).toBe(KILLS + 1);
  }, 300_000);
});
