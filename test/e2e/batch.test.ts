/**
 * Batching end to end (issue 12.3): the built CLI with mqtt.batch on, the Modbus simulator,
 * mosquitto and a subscriber that validates every batch against the events JSON Schema.
 * Telemetry arrives in arrays on <equipment>/telemetry/_batch, each batch a run of consecutive
 * sequences of one device, at most max_events; state changes and status events arrive single
 * on their own topics in their sequence position; the stream, de-duplicated by id, holds every
 * journaled event without a gap, across SIGKILLs and restarts.
 */
import { describe, expect, it } from "vitest";
import {
  expectGapFreeAndComplete,
  firstTelemetry,
  isWill,
  journalRecords,
  lastChangeArrives,
  type Plant,
  type Received,
  startGateway,
  startSubscriber,
  stopsCleanly,
  usePlantAndBroker,
  waitUntil,
  writeGatewayConfig,
} from "./harness.ts";

const MAX_EVENTS = 4;
const BATCH = `batch: { classes: [telemetry], max_events: ${MAX_EVENTS}, max_delay: 50ms }`;

/** Six more tags, c1..c6 on HR2..HR7 (runs of telemetry), and a second device. */
function extra(port: number): string {
  const copies = [1, 2, 3, 4, 5, 6].map(
    (i) => `      - { name: c${i}, address: HR${i + 1}, type: uint16 }`,
  );
  return `${copies.join("\n")}
  - id: plc2
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    poll_interval: 50ms
    tags:
      - { name: counter, address: HR0, type: uint16 }
`;
}

/** Changes HR2..HR7 every `everyMs` (beside the plant's counter); returns the stop. */
function changeCopies(plant: Plant, everyMs: number): () => void {
  let n = 0;
  const timer = setInterval(() => {
    n += 1;
    plant.sim.setRegisters(1, "HR2", [n, n, n, n, n, n]);
  }, everyMs);
  return () => clearInterval(timer);
}

/** The batches of a stream, by the message they came in. */
function batches(stream: readonly Received[]): Received[][] {
  const by = new Map<number, Received[]>();
  for (const m of stream) {
    if (m.batch === undefined) continue;
    const list = by.get(m.batch.message) ?? [];
    list.push(m);
    by.set(m.batch.message, list);
  }
  return [...by.values()];
}

describe("plc2mqtt run with telemetry batches", () => {
  const env = usePlantAndBroker();

  it("publishes telemetry in batches of consecutive events of one device, everything else single in its place, gap-free", async () => {
    const files = writeGatewayConfig(
      env.plant.sim.port,
      env.broker.url,
      extra(env.plant.sim.port),
      {
        mqtt: BATCH,
      },
    );
    const sub = await startSubscriber(env.broker.url, `${files.base}/#`);
    const gateway = startGateway(files.config);
    let stopCopies = () => {};
    try {
      await firstTelemetry(sub);
      env.plant.run(30);
      stopCopies = changeCopies(env.plant, 30);
      await waitUntil(
        () => sub.messages.filter((m) => m.event.type === "plc2mqtt.state.changed").length >= 10,
        20_000,
        "state changes",
      );
      // the plant stops: the last batch goes out on its delay, with nothing after it
      stopCopies();
      await lastChangeArrives(env.plant, sub);
      expect(await stopsCleanly(gateway, sub)).toBe(0);
    } finally {
      stopCopies();
      env.plant.pause();
      await gateway.kill();
      await sub.close();
    }

    const stream = expectGapFreeAndComplete(sub.messages, await journalRecords(files.dataDir));
    expect(stream.length).toBe(sub.messages.length); // nothing was sent twice in a clean run
    const area = `${files.base}/testsite/assembly/line-2`;
    for (const m of stream) {
      if (m.event.type !== "plc2mqtt.telemetry") {
        expect(m.batch, `${m.event.type} ${m.event.subject}`).toBeUndefined();
        continue;
      }
      const device = String(m.event.source).split("/").at(-1);
      expect(m.batch, `telemetry ${m.event.subject}`).toBeDefined();
      expect(m.topic).toBe(
        device === "plc"
          ? `${area}/plc/telemetry/_batch`
          : `${files.base}/testsite/plc2/telemetry/_batch`,
      );
      expect(m.retain).toBe(false);
    }
    const all = batches(stream);
    for (const batch of all) {
      expect(batch.length).toBe(batch[0]!.batch!.size);
      expect(batch.length).toBeLessThanOrEqual(MAX_EVENTS);
      const first = BigInt(batch[0]!.event.sequence);
      batch.forEach((m, i) => {
        expect(m.batch!.index).toBe(i);
        expect(BigInt(m.event.sequence)).toBe(first + BigInt(i));
        expect(m.event.source).toBe(batch[0]!.event.source);
      });
    }
    // runs of seven telemetry events of plc (c1..c6 and the next poll's counter) are cut at 4
    expect(Math.max(...all.map((b) => b.length))).toBe(MAX_EVENTS);
    expect(stream.filter((m) => m.event.type === "plc2mqtt.state.changed").length).toBeGreaterThan(
      9,
    );
    // per tag, order is never broken
    const counts = stream
      .filter((m) => m.event.subject === "c3")
      .map((m) => m.event.data.value as number);
    for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThan(counts[i - 1]!);
  }, 120_000);

  it("loses nothing across SIGKILLs and restarts: batches are re-sent only with the same ids", async () => {
    const KILLS = 5;
    const files = writeGatewayConfig(
      env.plant.sim.port,
      env.broker.url,
      extra(env.plant.sim.port),
      {
        mqtt: BATCH,
      },
    );
    const sub = await startSubscriber(env.broker.url, `${files.base}/#`);
    env.plant.run(10);
    const stopCopies = changeCopies(env.plant, 10);
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
        await waitUntil(() => onlineIds() > i, 20_000, `run ${i} to come online`);
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 700));
        if (i % 2 === 1) {
          // batches go out while the broker takes them but does not answer: killed with them
          // in flight, the next run sends their events again (the broker forwards both)
          env.broker.freeze();
          await new Promise((r) => setTimeout(r, 300));
          await gateway.kill();
          env.broker.thaw();
        } else await gateway.kill();
        gateway = startGateway(files.config);
      }
      stopCopies();
      await lastChangeArrives(env.plant, sub);
      expect(await stopsCleanly(gateway, sub)).toBe(0);
    } finally {
      env.broker.thaw();
      stopCopies();
      env.plant.pause();
      await gateway.kill();
      await sub.close();
    }

    // de-duplicated by id (an id re-sent with other content throws), every journaled event is
    // there, in sequence order, without a gap
    const stream = expectGapFreeAndComplete(sub.messages, await journalRecords(files.dataDir));
    expect(sub.messages.filter(isWill).length).toBeGreaterThan(0);
    // events of batches in flight at a kill arrived twice: the same ids, the same documents
    const resent = sub.messages.filter((m) => !isWill(m)).length - stream.length;
    expect(resent).toBeGreaterThan(0);
    expect(batches(stream).length).toBeGreaterThan(KILLS);
    for (const m of stream)
      expect(m.batch !== undefined).toBe(m.event.type === "plc2mqtt.telemetry");
  }, 300_000);
});
