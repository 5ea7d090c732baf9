/**
 * The built CLI end to end: simulator -> `plc2mqtt run` -> mosquitto -> a separate subscriber.
 * Events arrive, valid against the schema, with strictly increasing sequence numbers and no
 * gaps, on the documented topics; a clean stop leaves a retained offline status.
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

describe("plc2mqtt run, end to end", () => {
  const env = usePlantAndBroker();

  it("publishes telemetry, state changes and status in order, gap-free, valid against the schema", async () => {
    await publishesInOrder();
  });

  it("does the same with the device read on its own I/O thread (io_thread: true)", async () => {
    await publishesInOrder("io_thread: true");
  });

  async function publishesInOrder(device?: string) {
    const files = writeGatewayConfig(
      env.plant.sim.port,
      env.broker.url,
      "",
      device ? { device } : {},
    );
    const sub = await startSubscriber(env.broker.url, `${files.base}/#`);
    const gateway = startGateway(files.config);
    try {
      await firstTelemetry(sub);
      env.plant.run(30);
      await waitUntil(
        () => sub.messages.filter((m) => m.event.type === "plc2mqtt.state.changed").length >= 5,
        15_000,
        "state changes",
      );
      await lastChangeArrives(env.plant, sub);
      expect(await stopsCleanly(gateway, sub)).toBe(0);
    } finally {
      await gateway.kill();
      await sub.close();
    }

    const stream = expectGapFreeAndComplete(sub.messages, await journalRecords(files.dataDir));
    expect(stream.length).toBe(sub.messages.length); // nothing was sent twice in a clean run

    const types = new Set(stream.map((m) => m.event.type));
    for (const t of [
      "plc2mqtt.gateway.status",
      "plc2mqtt.device.status",
      "plc2mqtt.telemetry",
      "plc2mqtt.state.changed",
    ]) {
      expect(types).toContain(t);
    }
    const telemetry = stream.find(
      (m) => m.event.type === "plc2mqtt.telemetry" && m.event.subject === "counter",
    )!;
    expect(telemetry.topic).toBe(`${files.base}/testsite/assembly/line-2/plc/telemetry/counter`);
    expect(telemetry.retain).toBe(false);
    expect(telemetry.event).toMatchObject({
      specversion: "1.0",
      source: "plc2mqtt://e2e-gw/plc",
      site: "testsite",
      area: "assembly",
      line: "line-2",
    });
    const state = stream.find(
      (m) => m.event.type === "plc2mqtt.state.changed" && m.event.data.previous_state !== null,
    )!;
    expect(state.topic).toBe(`${files.base}/testsite/assembly/line-2/plc/state/mode`);
    expect(["idle", "run", "clean"]).toContain(state.event.data.state);
    // the counter's values arrive in order: per tag, order is never broken
    const counts = stream
      .filter((m) => m.event.subject === "counter")
      .map((m) => m.event.data.value as number);
    for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThan(counts[i - 1]!);
  }
});
