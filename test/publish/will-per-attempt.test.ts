/**
 * Issue 11, point 3: every connect attempt's last will has an id of its own. A real mosquitto
 * behind a TCP relay that loses the first CONNACK: the broker accepted attempt 1 (and holds its
 * will) but the gateway never hears so, gives up after its connect timeout and closes the
 * socket, so the broker publishes will 1. Attempt 2 of the same connection episode opens the
 * session; when the relay then cuts that session, the broker publishes will 2. Both wills are
 * real broker publications of the product's status events (real journal, real rendering),
 * validated against the events schema: same episode, same sequence, each its own `since`, and
 * two ids, so a consumer that de-duplicates on the id keeps both.
 */

import { rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { gatewayStatusEvents } from "../../src/app/status-events.ts";
import { openJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { Publisher } from "../../src/publish/publisher.ts";
import { GATEWAY, options, render, tempDir } from "../journal/helpers.ts";
import { assertValidEvent } from "../support/event-schema.ts";
import { startMosquitto, subscribe } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { mqttConfig } from "./fixtures.ts";

const STATUS_TOPIC = `plant/${GATEWAY}/status/${GATEWAY}`;

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/**
 * A TCP relay to the broker. The first `loseReplies` connections get nothing back from the
 * broker (their CONNACK is lost on the way); cut() ends every open connection.
 */
interface Relay {
  port: number;
  connections: number;
  cut(): void;
  close(): Promise<void>;
}

async function startRelay(brokerPort: number, loseReplies: number): Promise<Relay> {
  const open = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((client) => {
    connections += 1;
    const lose = connections <= loseReplies;
    const upstream = createConnection({ host: "127.0.0.1", port: brokerPort });
    for (const s of [client, upstream]) {
      open.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        open.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (!lose) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("relay has no port");
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    cut() {
      for (const s of open) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface StatusDoc {
  id: string;
  sequence: string;
  time: string;
  data: { status: string; since?: string; last_will?: boolean };
}

describe("the last will of each connect attempt", () => {
  it("has an id of its own: two wills of one episode are two events to a de-duplicating consumer", async () => {
    const broker = await startMosquitto();
    cleanup.push(() => rmSync(broker.dir, { recursive: true, force: true }));
    cleanup.push(() => broker.stop());
    const sub = await subscribe(broker.url, `${STATUS_TOPIC}/#`);
    cleanup.push(() => sub.close());
    const relay = await startRelay(broker.port, 1);
    cleanup.push(() => relay.close());

    const tmp = tempDir();
    cleanup.push(() => tmp.remove());
    const journal: Journal = await openJournal(options(tmp.dir));
    cleanup.push(() => journal.close());
    const status = gatewayStatusEvents(
      { gatewayId: GATEWAY, version: "0.0.0-test", startedAt: Date.now(), now: Date.now },
      render,
    );
    const pub = new Publisher({
      journal,
      mqtt: mqttConfig(`mqtt://127.0.0.1:${relay.port}`),
      clientId: "will-per-attempt",
      status,
      log: silentLogger(),
      connectTimeoutMs: 1000,
    });
    cleanup.push(() => pub.stop());

    const docs = (): StatusDoc[] =>
      sub.messages.map((m) => {
        assertValidEvent(m.payload);
        return JSON.parse(m.payload) as StatusDoc;
      });
    const wills = () => docs().filter((d) => d.data.last_will === true);

    // Attempt 1 times out without its CONNACK; the broker publishes its will. Attempt 2 opens
    // the session.
    pub.start();
    await eventually(() => wills().length === 1, 15_000, "the will of the attempt given up");
    await eventually(() => pub.connected, 15_000, "the session of the next attempt");
    await eventually(() => journal.stats().pending === 0, 10_000, "the online status published");
    expect(relay.connections).toBe(2);

    // The session ends without a clean stop: the broker publishes the session's will.
    relay.cut();
    await eventually(() => wills().length === 2, 15_000, "the will of the session");
    await pub.stop();

    const [first, second] = wills();
    const online = docs().find((d) => d.data.status === "online")!;
    // One episode: both repeat the sequence of the online status whose session it is.
    expect(first!.sequence).toBe(online.sequence);
    expect(second!.sequence).toBe(online.sequence);
    // Each attempt's will says when that attempt started ...
    expect(first!.data.since).toBe(first!.time);
    expect(second!.data.since).toBe(second!.time);
    expect(Date.parse(second!.data.since!)).toBeGreaterThanOrEqual(Date.parse(first!.data.since!));
    expect(Date.parse(second!.data.since!)).toBeLessThanOrEqual(Date.parse(online.time));
    // ... under an id of its own: a consumer that de-duplicates on the id keeps both
    // documents, not only the one it saw first.
    const byId = new Map<string, StatusDoc>();
    for (const will of wills()) if (!byId.has(will.id)) byId.set(will.id, will);
    expect([...byId.values()]).toEqual([first, second]);
    // The id is <epoch>-will-<attempt>-<sequence>.
    const epoch = online.id.slice(0, online.id.lastIndexOf("-"));
    expect(first!.id).toBe(`${epoch}-will-1-${online.sequence}`);
    expect(second!.id).toBe(`${epoch}-will-2-${online.sequence}`);
    // No will id is ever an event id of the journal.
    const ids = new Set(journal.query({}).map((r) => r.id));
    expect(ids.has(first!.id) || ids.has(second!.id)).toBe(false);
  }, 60_000);
});
