/**
 * GET /metrics of a gateway run in-process against the Modbus simulator and a real mosquitto:
 * the key series exist and move between two scrapes; a Modbus exception the simulator injects
 * is counted under its reason class. Plus the other paths and methods of the endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assessHealth } from "../../src/app/health.ts";
import { startHttpServer } from "../../src/app/http-server.ts";
import { classifyReason } from "../../src/app/metrics.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import { type Running, runGateway, scrape } from "./observe-fixture.ts";

const POLLS = 'plc2mqtt_device_polls_total{device="plc"}';
const GOOD_READS = 'plc2mqtt_device_tag_reads_total{device="plc",quality="good"}';
const EXCEPTIONS = 'plc2mqtt_device_read_errors_total{device="plc",reason="exception"}';
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

describe("read error reason classes", () => {
  // The Modbus driver's own messages (link.ts, driver.ts, unit-health.ts)
  it.each([
    ["read holding 0+2 on unit 1 at 10.0.0.5:502 failed: no response within 1000 ms", "timeout"],
    ["unit 3 not responding (2 timeouts in a row); next try in 4 s", "timeout"],
    ["read input 0+1 on unit 1 at h:502 failed: exception 2 (illegal data address)", "exception"],
    [
      "read holding 0+2 on unit 1 at h:502 failed: response carries 1 registers, expected 2",
      "malformed",
    ],
    ["not connected: connection closed by the peer", "disconnected"],
    ["decode float32 failed: expected 2 registers", "decode"],
    ["something new", "other"],
    [undefined, "other"],
  ])("%s is %s", (reason, expected) => {
    expect(classifyReason(reason)).toBe(expected);
  });
});
