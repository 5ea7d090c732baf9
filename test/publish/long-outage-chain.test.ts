/**
 * The hash chain across a long broker outage (issue 14): the publisher reserves its status
 * record at the start of the outage, then more than 10,000 events pile up behind it. The
 * journal refuses to rewrite a record that far below the head (replacements.ts: the chain
 * after it would be rewritten in one commit), so the publisher ends that session and starts a
 * new episode whose reserved record is at the head; the first reserved status stays `offline`
 * (true when it was written). Every event still reaches the real mosquitto, the retained
 * clean `offline` carries the chain head, and the journal verifies, against that head too.
 */
import { afterEach, expect, it } from "vitest";
import { gatewayStatusEvents } from "../../src/app/status-events.ts";
import { openJournal, verifyJournal } from "../../src/journal/index.ts";
import type { Journal } from "../../src/journal/types.ts";
import { Publisher } from "../../src/publish/publisher.ts";
import { events, GATEWAY, options, render, tempDir } from "../journal/helpers.ts";
import { assertValidEvent } from "../support/event-schema.ts";
import { startMosquitto, subscribe } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { captureLog, mqttConfig } from "./fixtures.ts";

const STATUS_TOPIC = `plant/${GATEWAY}/status/${GATEWAY}`;

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

it("a backlog of 10,500 behind the reserved status: a new episode, every event out, the chain whole", async () => {
  const broker = await startMosquitto();
  cleanup.push(() => broker.stop());
  await broker.stop(); // the outage
  const tmp = tempDir();
  cleanup.push(() => tmp.remove());
  const journal: Journal = await openJournal(options(tmp.dir, { integrityCheck: false }));
  let closed = false;
  cleanup.push(() => (closed ? undefined : journal.close()));
  const captured = captureLog("debug");
  const logged = (msg: string) =>
    captured
      .text()
      .split("\n")
      .filter((l) => l.includes(`"msg":"${msg}"`));
  const status = gatewayStatusEvents(
    {
      gatewayId: GATEWAY,
      version: "0.0.0-test",
      startedAt: Date.now(),
      now: Date.now,
      chain: () => journal.chainHead?.(),
    },
    render,
  );
  const pub = new Publisher({
    journal,
    mqtt: mqttConfig(broker.url),
    clientId: "long-outage-chain",
    status,
    log: captured.log,
  });
  cleanup.push(() => pub.stop());
  pub.start();
  await eventually(() => logged("MQTT connect failed").length >= 1, 10_000, "a failed attempt");
  for (let i = 0; i < 21; i++) await journal.append(events(500));

  await broker.start();
  await eventually(() => journal.stats().pending === 0, 60_000, "the backlog drained");
  expect(logged("cannot record the online status in the journal")).toHaveLength(1);
  const statuses = journal
    .query({ type: "plc2mqtt.gateway.status", limit: 10 })
    .map((r) => ({ sequence: r.sequence, doc: JSON.parse(r.payload) }));
  expect(statuses[0]!.doc.data.status).toBe("offline"); // the first episode's, kept as written
  const online = statuses.find((s) => s.doc.data.status === "online");
  expect(online?.sequence).toBeGreaterThan(10_500n);

  await pub.stop(); // the clean offline carries the head: every event was published by then
  await journal.close();
  closed = true;
  const retained = await subscribe(broker.url, STATUS_TOPIC);
  await retained.waitFor(1);
  await retained.close();
  const doc = JSON.parse(retained.messages[0]!.payload);
  assertValidEvent(doc);
  expect(doc.data.status).toBe("offline");
  const head = doc.data.chain as { sequence: string; hash: string };
  expect(BigInt(head.sequence)).toBeGreaterThan(10_500n);
  expect(
    verifyJournal(tmp.dir, { anchor: { sequence: BigInt(head.sequence), hash: head.hash } }),
  ).toMatchObject({ ok: true, anchorOk: true });
  expect(verifyJournal(tmp.dir)).toMatchObject({ ok: true });
}, 120_000);
