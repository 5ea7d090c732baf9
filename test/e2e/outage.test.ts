/**
 * Broker outages: the broker is stopped for 30 s while the plant keeps changing; every event
 * produced meanwhile arrives afterwards, in order, none missing. Then the gateway is stopped
 * during an outage and started again: nothing is lost and sequence numbers continue.
 */
import { describe, expect, it } from "vitest";
import {
  expectGapFreeAndComplete,
  firstTelemetry,
  journalRecords,
  lastChangeArrives,
  startGateway,
  startSubscriber,
  stopsCleanly,
  usePlantAndBroker,
  waitUntil,
  writeGatewayConfig,
} from "./harness.ts";

const OUTAGE_MS = 30_000;

describe("broker outage", () => {
  const env = usePlantAndBroker({ persistence: true });

  it(
    "delivers every event produced during a 30 s outage afterwards, in order",
    async () => {
      const files = writeGatewayConfig(env.plant.sim.port, env.broker.url);
      const sub = await startSubscriber(env.broker.url, `${files.base}/#`);
      const gateway = startGateway(files.config);
      try {
        await firstTelemetry(sub);
        env.plant.run(40);
        await waitUntil(() => sub.messages.length > 20, 10_000, "events before the outage");
        await env.broker.stop();
        const before = env.plant.changes;
        await new Promise((r) => setTimeout(r, OUTAGE_MS));
        expect(env.plant.changes - before).toBeGreaterThan(100); // the plant kept changing
        await env.broker.start();
        await lastChangeArrives(env.plant, sub);
        expect(await stopsCleanly(gateway, sub)).toBe(0);
      } finally {
        await gateway.kill();
        await sub.close();
      }
      const journal = await journalRecords(files.dataDir);
      const stream = expectGapFreeAndComplete(sub.messages, journal);
      const counts = stream
        .filter((m) => m.event.subject === "counter")
        .map((m) => m.event.data.value as number);
      for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThan(counts[i - 1]!);
      expect(counts.length).toBeGreaterThan(500);
    },
    OUTAGE_MS + 90_000,
  );

  it("loses nothing when the gateway is stopped during an outage and started again", async () => {
    const files = writeGatewayConfig(env.plant.sim.port, env.broker.url);
    const sub = await startSubscriber(env.broker.url, `${files.base}/#`);
    let gateway = startGateway(files.config);
    try {
      await firstTelemetry(sub);
      env.plant.run(40);
      await env.broker.stop();
      await new Promise((r) => setTimeout(r, 2000));
      expect(await gateway.stop()).toBe(0); // SIGTERM while the broker is away: bounded
      await new Promise((r) => setTimeout(r, 500)); // changes while the gateway is down are not events
      gateway = startGateway(files.config);
      await new Promise((r) => setTimeout(r, 2000));
      await env.broker.start();
      await lastChangeArrives(env.plant, sub);
      expect(await gateway.stop()).toBe(0);
    } finally {
      await gateway.kill();
      await sub.close();
    }
    const journal = await journalRecords(files.dataDir);
    const stream = expectGapFreeAndComplete(sub.messages, journal);
    const onlines = stream.filter(
      (m) => m.event.type === "plc2mqtt.gateway.status" && m.event.data.status === "online",
    );
    // two runs (each announces its start time), one gap-free stream: the second run's
    // sequences continue the first's
    expect(new Set(onlines.map((m) => m.event.data.started_at)).size).toBe(2);
  }, 90_000);
});
