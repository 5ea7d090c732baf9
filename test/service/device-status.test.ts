/**
 * Device status events say what changed, once (issue 13.1 and 13.7): a gateway run in-process
 * against the Modbus simulator and a real mosquitto, with a second device nobody answers for.
 * Every failed reconnect of that device says `failed` with the same reason again; the broker
 * must see one retained `failed` status, not one per attempt. And a status text is one line,
 * whatever the driver's error message carried.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceWatch } from "../../src/app/device-watch.ts";
import { deviceStatusEvent } from "../../src/app/status-events.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { type Broker, freePort, startMosquitto, subscribe } from "../support/mosquitto.ts";
import { type Running, runGateway, waitUntil } from "./observe-fixture.ts";

describe("device status events", () => {
  let broker: Broker;
  let run: Running;
  let logged = "";

  beforeAll(async () => {
    broker = await startMosquitto();
    const deadPort = await freePort();
    const log = createLogger({
      level: "warn",
      destination: new Writable({
        write(chunk, _encoding, done) {
          logged += String(chunk);
          done();
        },
      }),
    });
    run = await runGateway({
      brokerUrl: broker.url,
      log,
      extraDevices: `  - { id: gone, protocol: modbus-tcp, host: 127.0.0.1, port: ${deadPort}, poll_interval: 100ms, reconnect_min: 50ms, reconnect_max: 100ms, tags: [{ name: x, address: HR0, type: uint16 }] }`,
    });
  });
  afterAll(async () => {
    await run?.stop();
    await broker?.stop();
  });

  it("point 1: a device that keeps failing to connect publishes one failed status, not one per attempt", async () => {
    const attempts = () =>
      logged
        .split("\n")
        .filter((l) => l.includes('"device connect failed"') && l.includes('"device":"gone"'))
        .length;
    const topic = `${run.base}/testsite/gone/status/gone`;
    const sub = await subscribe(broker.url, topic);
    try {
      await waitUntil(() => attempts() >= 5, 20_000, "five failed connect attempts");
      // everything produced up to now is journaled and acknowledged by the broker
      const sequence = run.gateway.journal.stats().lastSequence;
      await waitUntil(
        () =>
          run.gateway.queuedEvents === 0 &&
          run.gateway.journal.stats().pending === 0 &&
          run.gateway.journal.stats().lastSequence >= sequence,
        15_000,
        "the journal drained",
      );
      await waitUntil(() => sub.messages.length >= 1, 15_000, "the retained status");
      const statuses = sub.messages.map((m) => JSON.parse(m.payload) as { data: object });
      expect(attempts()).toBeGreaterThanOrEqual(5);
      expect(statuses).toHaveLength(1);
      expect(statuses[0]!.data).toMatchObject({ status: "failed" });
    } finally {
      await sub.close();
    }
  });
});

describe("device status text", () => {
  it("point 7: an error message over several lines becomes a one-line status, in the event and for health", () => {
    const error =
      "connect failed: The connection may have been rejected by server,\n   Err = (socket closed)\r\n\n";
    const event = deviceStatusEvent("plc", {}, { status: "failed", error }, 0);
    expect(event.data).toEqual({
      status: "failed",
      error:
        "connect failed: The connection may have been rejected by server, Err = (socket closed)",
    });
    const watch = new DeviceWatch();
    watch.add("plc", 100, 0);
    expect(watch.onStatus("plc", { status: "failed", error }, 1)).toBe(true);
    expect(watch.list()[0]!.error).not.toMatch(/[\r\n]/);
  });

  it("point 7: a repeated failed status with the same reason is no change; a new reason or status is", () => {
    const watch = new DeviceWatch();
    watch.add("plc", 100, 0);
    const failed = { status: "failed" as const, error: "connect ECONNREFUSED 127.0.0.1:502" };
    expect(watch.onStatus("plc", failed, 1)).toBe(true);
    expect(watch.onStatus("plc", failed, 2)).toBe(false);
    expect(watch.onStatus("plc", { ...failed }, 3)).toBe(false);
    expect(watch.list()[0]!.since).toBe(1);
    expect(watch.onStatus("plc", { ...failed, error: "connect ETIMEDOUT" }, 4)).toBe(true);
    expect(watch.onStatus("plc", { status: "connected" }, 5)).toBe(true);
    expect(watch.onStatus("plc", { status: "connected" }, 6)).toBe(false);
    // a device no longer watched (removed by a reload): its last word is always news
    watch.remove("plc");
    expect(
      watch.onStatus("plc", { status: "disconnected", error: "removed from the config" }, 7),
    ).toBe(true);
  });
});
