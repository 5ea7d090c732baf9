/**
 * Held reads (src/publish/ack-filter.ts, issue 12): after a read, while PUBACKs are awaited and
 * nobody waits for them, the broker's socket is not read for a while, so that the PUBACKs a
 * broker sends a few at a time come in one read instead of waking the gateway for each. Shown
 * on the sockets the connection builds (plain and TLS) against a broker stand-in that sends
 * PUBACKs when told, and on a real mosquitto: with reads held for an hour, a publisher whose
 * window is full still reads each PUBACK at once, stop() waits for no hold, and neither does a
 * replay.
 */
import { readFileSync, rmSync } from "node:fs";
import { createServer as netServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createServer as tlsServer } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckFilter } from "../../src/publish/ack-filter.ts";
import { buildSocket } from "../../src/publish/connection.ts";
import { Publisher } from "../../src/publish/publisher.ts";
import { replayRecords } from "../../src/publish/replay.ts";
import { type Broker, createTestPki, startMosquitto, type TestPki } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { captureLog, mqttConfig, telemetry, testStatus } from "./fixtures.ts";
import { MemoryJournal } from "./memory-journal.ts";

const HOUR = 3_600_000;
let pki: TestPki;

beforeAll(() => {
  pki = createTestPki();
});

afterAll(() => {
  rmSync(dirname(pki.caFile), { recursive: true, force: true });
});

/** A plain MQTT 3.1.1 / MQTT 5 success PUBACK of `id`. */
const puback = (id: number) => Buffer.from([0x40, 0x02, id >> 8, id & 0xff]);

/** A broker stand-in on a free port; `peer` is the connection it accepted, once there is one. */
async function standIn(tls: boolean) {
  const accepted: Socket[] = [];
  const server: Server = tls
    ? tlsServer({ cert: readFileSync(pki.certFile), key: readFileSync(pki.keyFile) }, (s) =>
        accepted.push(s),
      )
    : netServer((s) => accepted.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return { server, port, peer: () => accepted[0] };
}

describe("held reads on the connection's own socket", () => {
  for (const tls of [false, true]) {
    it(`${tls ? "TLS" : "plain TCP"}: PUBACKs sent during a hold wait in the kernel and come together when it ends`, async () => {
      const broker = await standIn(tls);
      let reads = 0;
      let filter: AckFilter | undefined;
      const socket = buildSocket(
        { tls, host: "127.0.0.1", port: broker.port, display: "" },
        tls ? { ca: readFileSync(pki.caFile) } : {},
        (bytes) => {
          reads++;
          filter?.receive(bytes);
        },
      );
      filter = new AckFilter(socket, { holdMs: HOUR });
      const acks: number[] = [];
      filter.onAck = (id) => acks.push(id);
      let awaited = true; // the connection's answer: PUBACKs awaited, nobody in a hurry
      filter.holdReads = () => awaited;
      filter.resume(); // mqtt.js's side reads (nothing is passed on here)
      try {
        await eventually(
          () => broker.peer() !== undefined && socket.readyState === "open",
          5000,
          "connected",
        );
        const send = (id: number) =>
          new Promise<void>((resolve) => broker.peer()?.write(puback(id), () => resolve()));
        await send(1);
        await eventually(() => acks.length === 1, 5000, "the first PUBACK");
        // that read started a hold: nine PUBACKs, each written on its own, are not read
        for (let id = 2; id <= 10; id++) await send(id);
        await sleep(300); // on loopback they are in the gateway's kernel once written
        expect(acks).toEqual([1]);
        const before = reads;
        filter.readNow(); // as when the publisher waits for room
        await eventually(() => acks.length === 10, 5000, "the held PUBACKs");
        expect(acks).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        // plain TCP: one read for all nine (TLS hands each record's bytes over on its own)
        if (!tls) expect(reads - before).toBe(1);
        // nothing awaited: no hold, each PUBACK is read as it comes
        awaited = false;
        filter.readNow(); // ends the hold the last read started
        await send(11);
        await eventually(() => acks.includes(11), 5000, "PUBACK 11 without a hold");
        await send(12);
        await eventually(() => acks.includes(12), 5000, "PUBACK 12 without a hold");
      } finally {
        filter.destroy();
        broker.peer()?.destroy();
        await new Promise((resolve) => broker.server.close(resolve));
      }
    });
  }
});

describe("held reads with a publisher on a real mosquitto", () => {
  let broker: Broker;
  let tlsBroker: Broker;
  beforeAll(async () => {
    broker = await startMosquitto();
    tlsBroker = await startMosquitto({ tls: pki });
  });
  afterAll(async () => {
    await broker?.stop();
    await tlsBroker?.stop();
  });

  for (const tls of [false, true]) {
    it(`${tls ? "TLS" : "plain TCP"}: a full window reads PUBACKs at once, and stop() waits for no hold`, async () => {
      const url = (tls ? tlsBroker : broker).url;
      const journal = new MemoryJournal();
      const log = captureLog();
      await journal.append(Array.from({ length: 500 }, (_, i) => telemetry(i)));
      const pub = new Publisher({
        journal,
        mqtt: mqttConfig(url, { max_in_flight: 5, ...(tls ? { ca: pki.caFile } : {}) }),
        clientId: `held-${tls ? "tls" : "tcp"}`,
        status: testStatus,
        log: log.log,
        ackHoldMs: HOUR,
      });
      pub.start();
      try {
        // 500 records through a window of 5: a hold of an hour on any read would stop it
        await eventually(() => pub.stats().published >= 450, 20_000, "450 published");
      } finally {
        const stopping = Date.now();
        await pub.stop(20_000);
        // not a timing test: a read held to the end would take the whole 20 s
        expect(Date.now() - stopping).toBeLessThan(10_000);
      }
      // stop() read the last PUBACKs at once: none was left unacknowledged
      expect(log.text()).not.toMatch(/unacknowledged records kept/);
      expect(pub.stats().inFlight).toBe(0);
    });
  }

  it("a replay reads its PUBACKs at once", async () => {
    const journal = new MemoryJournal();
    await journal.append(Array.from({ length: 300 }, (_, i) => telemetry(i)));
    const records = journal.records.map(({ sequence, id, topic, payload }) => ({
      sequence,
      id,
      topic,
      payload,
    }));
    // a window of 5: with an hour's hold on any read, the replay would never end
    const result = await replayRecords(records, {
      mqtt: mqttConfig(broker.url, { max_in_flight: 5 }),
      clientId: "held-replay",
      log: captureLog().log,
      ackTimeoutMs: 20_000,
      ackHoldMs: HOUR,
    });
    expect(result.published).toBe(300);
  });
});
