/**
 * GET /metrics of a gateway run in-process against the Modbus simulator and a real mosquitto:
 * the key series exist and move between two scrapes; a Modbus exception the simulator injects
 * is counted under its reason code. Plus the other paths and methods of the endpoint, the
 * bounded label set of reason codes, and the drivers' retries read at scrape time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceWatch } from "../../src/app/device-watch.ts";
import { assessHealth } from "../../src/app/health.ts";
import { startHttpServer } from "../../src/app/http-server.ts";
import { GatewayMetrics, MAX_CODE_LABELS } from "../../src/app/metrics.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { GatewayError } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import { parseMetrics, type Running, runGateway, scrape } from "./observe-fixture.ts";

const POLLS = 'plc2mqtt_device_polls_total{device="plc"}';
const GOOD_READS = 'plc2mqtt_device_tag_reads_total{device="plc",quality="good"}';
const EXCEPTIONS = 'plc2mqtt_device_read_errors_total{device="plc",code="MODBUS_EXCEPTION"}';
const READ_COUNT = 'plc2mqtt_device_read_duration_seconds_count{device="plc"}';
const COUNTER_EVENTS =
  'plc2mqtt_events_total{device="plc",tag="counter",type="plc2mqtt.telemetry"}';
const TELEMETRY = 'plc2mqtt_engine_events_total{type="plc2mqtt.telemetry"}';
const PUBLISHED = "plc2mqtt_publisher_published_total";
const SEQUENCE = "plc2mqtt_journal_last_sequence";

describe("GET /metrics", () => {
  let broker: Broker;
  let run: Running;

  beforeAll(async () => {
    broker = await startMosquitto();
    run = await runGateway({ brokerUrl: broker.url });
    run.sim.faults.exception(2, { functionCode: 4 }); // IR0: illegal data address
  });
  afterAll(async () => {
    await run?.stop();
    await broker?.stop();
  });

  it("exposes the gateway's series, and they move between two scrapes", async () => {
    let first = await scrape(run.url);
    const deadline0 = Date.now() + 15_000;
    while (!((first.get(PUBLISHED) ?? 0) > 0 && (first.get(EXCEPTIONS) ?? 0) > 0)) {
      if (Date.now() > deadline0)
        throw new Error("no scrape with published events and a counted exception");
      await new Promise((r) => setTimeout(r, 100));
      first = await scrape(run.url);
    }
    for (const name of [
      POLLS,
      GOOD_READS,
      EXCEPTIONS,
      READ_COUNT,
      COUNTER_EVENTS,
      TELEMETRY,
      PUBLISHED,
      SEQUENCE,
      'plc2mqtt_device_read_duration_seconds_bucket{le="+Inf",device="plc"}',
      'plc2mqtt_device_last_good_read_age_seconds{device="plc"}',
      'plc2mqtt_device_connected{device="plc"}',
      "plc2mqtt_journal_pending_events",
      "plc2mqtt_journal_bytes",
      "plc2mqtt_journal_oldest_pending_age_seconds",
      "plc2mqtt_journal_last_commit_seconds",
      "plc2mqtt_journal_queued_events",
      "plc2mqtt_journal_dropped_events_total",
      "plc2mqtt_publisher_connected",
      "plc2mqtt_publisher_in_flight_messages",
      "plc2mqtt_publisher_resent_total",
      "plc2mqtt_publisher_reconnects_total",
      'plc2mqtt_engine_events_total{type="plc2mqtt.device.status"}',
      "plc2mqtt_healthy",
      "process_cpu_user_seconds_total",
    ])
      expect(first.has(name), name).toBe(true);
    expect(first.get('plc2mqtt_device_connected{device="plc"}')).toBe(1);
    expect(first.get("plc2mqtt_publisher_connected")).toBe(1);
    expect(first.get("plc2mqtt_healthy")).toBe(1);
    expect(first.get(GOOD_READS)).toBeGreaterThan(0);

    const moving = [
      POLLS,
      GOOD_READS,
      EXCEPTIONS,
      READ_COUNT,
      COUNTER_EVENTS,
      TELEMETRY,
      PUBLISHED,
    ];
    let second = first;
    const deadline = Date.now() + 15_000;
    while (moving.some((name) => second.get(name)! <= first.get(name)!)) {
      if (Date.now() > deadline)
        throw new Error(
          `series did not move: ${moving.filter((n) => second.get(n)! <= first.get(n)!).join(", ")}`,
        );
      await new Promise((r) => setTimeout(r, 100));
      second = await scrape(run.url);
    }
    expect(second.get(SEQUENCE)!).toBeGreaterThan(first.get(SEQUENCE)!);
  });

  it("answers 404 elsewhere and 405 to other methods", async () => {
    const notFound = await fetch(`${run.url}/nope`);
    expect(notFound.status).toBe(404);
    await notFound.text();
    const post = await fetch(`${run.url}/metrics`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    await post.text();
    const metrics = await fetch(`${run.url}/metrics?x=1`);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    await metrics.text();
  });
});

describe("the HTTP endpoint", () => {
  it("refuses to start on a port that is taken, naming the address", async () => {
    const options = {
      log: silentLogger(),
      health: () => assessHealth({} as never),
      metrics: async () => ({ contentType: "text/plain", body: "" }),
    };
    const first = await startHttpServer({ ...options, listen: "127.0.0.1:0" });
    try {
      const taken = `127.0.0.1:${first.address.port}`;
      await expect(startHttpServer({ ...options, listen: taken })).rejects.toMatchObject({
        code: "HTTP_LISTEN",
        message: expect.stringContaining(taken),
      });
    } finally {
      await first.close();
    }
  });
});

/** A GatewayMetrics over a device watch, with empty parts: for the series of one part. */
function metricsOver(devices: DeviceWatch): GatewayMetrics {
  return new GatewayMetrics(
    {
      journal: () => ({
        lastSequence: 0n,
        pending: 0,
        bytes: 0,
        dropped: 0,
        corruptSkipped: 0,
        lastCommitMs: 0,
      }),
      publisher: () => undefined,
      queuedEvents: () => 0,
      engine: () => ({ ignoredSamples: 0 }),
      devices: () => devices.list(),
      healthy: () => true,
      now: Date.now,
    },
    { processMetrics: false },
  );
}

const badRead = (tag: string, reasonCode?: string): TagSample => ({
  device: "d",
  tag,
  value: null,
  quality: "bad",
  reason: "some text the driver chose",
  ...(reasonCode === undefined ? {} : { reasonCode }),
  readTime: Date.now(),
});

const errorsOf = async (metrics: GatewayMetrics) => {
  const all = parseMetrics((await metrics.scrape()).body);
  return new Map(
    [...all].filter(([name]) => name.startsWith("plc2mqtt_device_read_errors_total{")),
  );
};

describe("point 4: read errors by reason code", () => {
  const poll = { group: { interval: 100, tags: [] }, durationMs: 1, endedAt: Date.now() };

  it("counts bad reads under their code: catalogue codes and OPC UA status names, whatever the text", async () => {
    const metrics = metricsOver(new DeviceWatch());
    metrics.onPoll("d", {
      ...poll,
      samples: [
        badRead("a", "BadNodeIdUnknown"),
        badRead("b", "BadNodeIdUnknown"),
        badRead("c", "MODBUS_TIMEOUT"),
        badRead("d", "UncertainLastUsableValue"),
        badRead("e"),
      ],
    });
    // a read() that threw counts once, by its error's code
    metrics.onPoll("d", {
      ...poll,
      error: new GatewayError("MODBUS_DISCONNECTED", "not connected: connection lost"),
    });
    const errors = await errorsOf(metrics);
    const at = (code: string) =>
      errors.get(`plc2mqtt_device_read_errors_total{device="d",code="${code}"}`);
    expect(at("BadNodeIdUnknown")).toBe(2);
    expect(at("MODBUS_TIMEOUT")).toBe(1);
    expect(at("UncertainLastUsableValue")).toBe(1);
    expect(at("MODBUS_DISCONNECTED")).toBe(1);
    expect(at("other")).toBe(1);
    expect([...errors.keys()].some((k) => k.includes("reason="))).toBe(false);
  });

  it("keeps the label set bounded: unknown shapes and codes past the limit count as other", async () => {
    const metrics = metricsOver(new DeviceWatch());
    const samples = [
      badRead("x", "not a code at all"),
      badRead("y", "SOME_NEW_CODE"),
      ...Array.from({ length: MAX_CODE_LABELS + 10 }, (_, i) => badRead(`t${i}`, `BadThing${i}`)),
    ];
    metrics.onPoll("d", { ...poll, samples });
    const errors = await errorsOf(metrics);
    expect(errors.size).toBe(MAX_CODE_LABELS + 1);
    expect(errors.get('plc2mqtt_device_read_errors_total{device="d",code="other"}')).toBe(12);
    expect(errors.get('plc2mqtt_device_read_errors_total{device="d",code="BadThing0"}')).toBe(1);
  });
});

describe("point 4: driver retries", () => {
  it("are read from the device's driver at scrape time, and stay monotonic when a reload replaces the driver", async () => {
    const devices = new DeviceWatch();
    const metrics = metricsOver(devices);
    const RETRIES = 'plc2mqtt_driver_retries_total{device="plc"}';
    const driverStats = { retries: 0 };
    devices.add("plc", 100, Date.now(), () => driverStats);
    devices.add("no-stats", 100, Date.now(), () => undefined);
    const scrapeNow = async () => parseMetrics((await metrics.scrape()).body);

    expect((await scrapeNow()).get(RETRIES)).toBe(0);
    driverStats.retries = 7;
    expect((await scrapeNow()).get(RETRIES)).toBe(7);
    expect((await scrapeNow()).has('plc2mqtt_driver_retries_total{device="no-stats"}')).toBe(false);

    // a reload that restarts the device: a new driver counting from 0
    devices.remove("plc");
    const next = { retries: 0 };
    devices.add("plc", 100, Date.now(), () => next);
    expect((await scrapeNow()).get(RETRIES)).toBe(7);
    next.retries = 2;
    expect((await scrapeNow()).get(RETRIES)).toBe(9);
  });
});
