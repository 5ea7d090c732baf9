/**
 * GET /healthz and the retained health topic, of a gateway run in-process against the Modbus
 * simulator and a real mosquitto: 200 while it does its job; 503 with the reason once the broker
 * is gone past the buffering limit (max_pending_age: 1s here), 200 again once it is back; a
 * device down alone keeps 200 (listed with its problem), every device down is 503. Then the
 * verdict rules themselves, on assessHealth.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceState } from "../../src/app/device-watch.ts";
import { assessHealth, type HealthInput } from "../../src/app/health.ts";
import { type Broker, freePort, startMosquitto, subscribe } from "../support/mosquitto.ts";
import { healthz, type Running, runGateway } from "./observe-fixture.ts";

async function healthzUntil(url: string, status: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await healthz(url);
    if (got.status === status) return got;
    if (Date.now() > deadline)
      throw new Error(`/healthz stayed ${got.status}: ${JSON.stringify(got.body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("GET /healthz and the health topic", () => {
  let broker: Broker;
  let run: Running;

  beforeAll(async () => {
    broker = await startMosquitto();
    // a second device nobody answers for: a device problem, not a gateway one
    const deadPort = await freePort();
    run = await runGateway({
      brokerUrl: broker.url,
      health: "{ max_pending_age: 1s, topic_interval: 1s }",
      extraDevices: `  - { id: gone, protocol: modbus-tcp, host: 127.0.0.1, port: ${deadPort}, poll_interval: 100ms, reconnect_min: 100ms, reconnect_max: 500ms, tags: [{ name: x, address: HR0, type: uint16 }] }`,
    });
  });
  afterAll(async () => {
    await run?.stop();
    await broker?.stop();
  });

  it("is 200 while the gateway does its job, with an unreachable device listed", async () => {
    const deadline = Date.now() + 15_000;
    let got = await healthzUntil(run.url, 200, 15_000);
    // at start /healthz may answer before the broker's CONNACK (an outage within the limit)
    const working = () =>
      got.body.devices.find((d) => d.id === "gone")?.status === "failed" &&
      got.body.mqtt?.connected === true;
    while (!working()) {
      if (Date.now() > deadline) {
        throw new Error(`no failed device beside a connected broker: ${JSON.stringify(got.body)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
      got = await healthz(run.url);
    }
    expect(got.status).toBe(200);
    expect(got.body.status).toBe("ok");
    expect(got.body.reasons).toEqual([]);
    expect(got.body.mqtt?.connected).toBe(true);
    expect(got.body.devices.find((d) => d.id === "gone")?.problem).toMatch(/^failed/);
    expect(got.body.devices.find((d) => d.id === "plc")).toMatchObject({ status: "connected" });
    expect(got.body.devices.find((d) => d.id === "plc")?.problem).toBeUndefined();
  });

  it("publishes the summary retained on <base>/<site>/status/<gateway>/health", async () => {
    const topic = `${run.base}/testsite/status/obs-gw/health`;
    const live = await subscribe(broker.url, topic);
    try {
      await live.waitFor(1); // one was published since this subscriber came
    } finally {
      await live.close();
    }
    const late = await subscribe(broker.url, topic);
    try {
      await late.waitFor(1);
      const first = late.messages[0]!;
      expect(first.retain).toBe(true);
      const body = JSON.parse(first.payload);
      expect(body).toMatchObject({
        status: "ok",
        gateway: { id: "obs-gw", version: "0.0.0-test" },
      });
      expect(body.type).toBeUndefined(); // not an event
    } finally {
      await late.close();
    }
  });

  it("turns 503 when the broker is gone past the buffering limit, and 200 once it is back", async () => {
    await broker.stop();
    const down = await healthzUntil(run.url, 503, 20_000);
    expect(down.body.status).toBe("unhealthy");
    expect(down.body.mqtt?.connected).toBe(false);
    expect(down.body.reasons.join("\n")).toMatch(/broker is unreachable.*oldest waiting event/);
    await broker.start();
    const up = await healthzUntil(run.url, 200, 20_000);
    expect(up.body.mqtt?.connected).toBe(true);
  });

  it("turns 503 when every device is down", async () => {
    await run.sim.close();
    const down = await healthzUntil(run.url, 503, 20_000);
    expect(down.body.reasons).toContain("all 2 devices have a problem");
    expect(down.body.devices.every((d) => d.problem !== undefined)).toBe(true);
  });
});

describe("the health topic at start and stop", () => {
  it("point 7: is published as soon as the broker connection is up (not one interval later), and a clean stop replaces it with stopped", async () => {
    const broker = await startMosquitto();
    let run: Running | undefined;
    try {
      const started = Date.now();
      // an interval no test waits for: only the publish at start can bring a message
      run = await runGateway({ brokerUrl: broker.url, health: "{ topic_interval: 1h }" });
      const topic = `${run.base}/testsite/status/obs-gw/health`;
      const live = await subscribe(broker.url, topic);
      try {
        await live.waitFor(1, 15_000);
        const first = JSON.parse(live.messages[0]!.payload);
        expect(first.status).not.toBe("stopped");
        expect(first.gateway.id).toBe("obs-gw");
        expect(Date.parse(first.checked_at)).toBeGreaterThanOrEqual(started - 1000);
      } finally {
        await live.close();
      }
      await run.stop();
      run = undefined;
      const after = await subscribe(broker.url, topic);
      try {
        await after.waitFor(1, 15_000);
        const retained = after.messages[0]!;
        expect(retained.retain).toBe(true);
        const body = JSON.parse(retained.payload);
        expect(body).toMatchObject({
          status: "stopped",
          reasons: [],
          gateway: { id: "obs-gw", version: "0.0.0-test" },
        });
        expect(Date.parse(body.checked_at)).toBeGreaterThanOrEqual(started);
      } finally {
        await after.close();
      }
    } finally {
      await run?.stop();
      await broker.stop();
    }
  });
});

describe("the health verdict", () => {
  const now = 1_000_000;
  const limits = {
    max_pending_events: 100,
    max_pending_age: 60_000,
    stale_polls: 5,
    devices: "all_down" as const,
    topic_interval: 30_000 as const,
  };
  const device = (over: Partial<DeviceState>): DeviceState => ({
    id: "d",
    status: "connected",
    since: now - 60_000,
    intervalMs: 1000,
    lastGoodReadAt: now - 500,
    ...over,
  });
  const input = (over: Partial<HealthInput>): HealthInput => ({
    now,
    gateway: { id: "gw", version: "1", startedAt: now - 120_000 },
    journal: {
      lastSequence: 10n,
      pending: 0,
      bytes: 4096,
      dropped: 0,
      corruptSkipped: 0,
      lastCommitMs: 1,
    },
    queuedEvents: 0,
    publisher: { inFlight: 0, published: 10, resent: 0, reconnects: 0, connected: true },
    devices: [device({})],
    limits,
    ...over,
  });
  const reasons = (over: Partial<HealthInput>) => assessHealth(input(over)).reasons;
  const disconnected = { inFlight: 0, published: 10, resent: 0, reconnects: 0, connected: false };

  it("is ok when everything works", () => {
    expect(assessHealth(input({}))).toMatchObject({ status: "ok", reasons: [] });
  });

  it("is unhealthy while journal appends fail", () => {
    expect(reasons({ appendError: "disk full" })).toEqual([
      "the journal refuses writes: disk full",
    ]);
  });

  it("tolerates a broker outage within the buffering limits only", () => {
    const journal = { ...input({}).journal, pending: 100, oldestPendingTime: now - 60_000 };
    expect(reasons({ publisher: disconnected, journal })).toEqual([]);
    expect(reasons({ publisher: disconnected, journal: { ...journal, pending: 101 } })).toEqual([
      "the broker is unreachable and 101 events wait (limit 100)",
    ]);
    expect(
      reasons({
        publisher: disconnected,
        journal: { ...journal, oldestPendingTime: now - 61_000 },
      }),
    ).toEqual(["the broker is unreachable and the oldest waiting event is 61 s old (limit 60 s)"]);
    // connected: the backlog is draining
    expect(reasons({ journal: { ...journal, pending: 10_000 } })).toEqual([]);
  });

  it("counts a connected device without a good read for stale_polls intervals as a problem", () => {
    const summary = assessHealth(input({ devices: [device({ lastGoodReadAt: now - 5001 })] }));
    expect(summary.devices[0]?.problem).toBe("no good read for 5 s (limit 5 s)");
    expect(summary.reasons).toEqual(["all 1 devices have a problem"]);
    // never read: counted from the connect
    const fresh = device({ since: now - 1000 });
    delete fresh.lastGoodReadAt;
    expect(assessHealth(input({ devices: [fresh] })).devices[0]?.problem).toBeUndefined();
    // still connecting: no problem yet
    expect(reasons({ devices: [device({ status: "connecting", since: now - 60_000 })] })).toEqual(
      [],
    );
  });

  it("applies the devices policy", () => {
    const devices = [device({ id: "a" }), device({ id: "b", status: "failed", error: "refused" })];
    expect(reasons({ devices })).toEqual([]);
    expect(reasons({ devices, limits: { ...limits, devices: "any_down" } })).toEqual([
      "1 of 2 devices have a problem",
    ]);
    const allDown = devices.map((d) => ({ ...d, status: "disconnected" as const }));
    expect(reasons({ devices: allDown, limits: { ...limits, devices: "ignore" } })).toEqual([]);
    expect(reasons({ devices: [] })).toEqual([]);
  });
});
