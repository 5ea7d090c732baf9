/**
 * A broker without retained messages (mosquitto `retain_available false`; issue 13.7): with
 * `mqtt.retain: false` the whole gateway runs against it, in-process against the Modbus
 * simulator: it stays connected, and the gateway and device status events and the health
 * message arrive, unretained.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Broker, type Subscriber, startMosquitto, subscribe } from "../support/mosquitto.ts";
import { healthz, type Running, runGateway, waitUntil } from "./observe-fixture.ts";

describe("mqtt.retain: false", () => {
  let broker: Broker;
  let run: Running;
  let sub: Subscriber;

  beforeAll(async () => {
    broker = await startMosquitto({ config: ["retain_available false"] });
    // before the gateway: nothing is retained, so a later subscriber would miss the statuses
    sub = await subscribe(broker.url, "#");
    run = await runGateway({
      brokerUrl: broker.url,
      mqtt: "retain: false",
      health: "{ topic_interval: 1s }",
    });
  });
  afterAll(async () => {
    await sub?.close();
    await run?.stop();
    await broker?.stop();
  });

  it("point 7: runs against a broker that refuses retained messages: status, device status and health arrive unretained", async () => {
    const seen = (pattern: RegExp) => sub.messages.some((m) => pattern.test(m.topic));
    await waitUntil(
      () =>
        seen(/\/status\/obs-gw$/) &&
        seen(/\/status\/obs-gw\/health$/) &&
        seen(/\/status\/plc$/) &&
        sub.messages.some((m) => m.payload.includes('"plc2mqtt.telemetry"')),
      20_000,
      "health, device status and telemetry",
    );
    expect(sub.messages.every((m) => !m.retain)).toBe(true);
    const health = await healthz(run.url);
    expect(health.body.mqtt?.connected).toBe(true);
    expect(run.gateway.publisher?.stats().reconnects).toBe(0);
  });
});
