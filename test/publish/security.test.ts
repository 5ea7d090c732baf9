/**
 * MQTT security against real mosquitto listeners: mqtts with a CA made by openssl (verified;
 * a wrong CA is refused with a clear, retried error), and a mosquitto password file (the right
 * password works; a wrong one is logged with the broker's reason and retried, and no password
 * ever reaches the log).
 */
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/lib/logger.ts";
import { Publisher } from "../../src/publish/publisher.ts";
import {
  createPasswordFile,
  createTestPki,
  startMosquitto,
  subscribe,
} from "../support/mosquitto.ts";
import { eventually, expectHandlesBackTo, openHandles } from "../support/resources.ts";
import { captureLog, mqttConfig, telemetry, testStatus } from "./fixtures.ts";
import { MemoryJournal } from "./memory-journal.ts";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe("mqtts", () => {
  it("connects with server verification against the configured CA", async () => {
    const pki = createTestPki();
    const broker = await startMosquitto({ tls: pki });
    cleanup.push(() => broker.stop());
    expect(broker.url).toMatch(/^mqtts:/);
    const sub = await subscribe(broker.url, "test/telemetry/#", { ca: pki.caFile });
    cleanup.push(() => sub.close());
    const journal = new MemoryJournal();
    await journal.append([telemetry(1), telemetry(2), telemetry(3)]);
    const pub = new Publisher({
      journal,
      mqtt: mqttConfig(broker.url, { ca: pki.caFile }),
      clientId: "pub-tls",
      status: testStatus,
      log: silentLogger(),
    });
    pub.start();
    cleanup.push(() => pub.stop());
    await sub.waitFor(3);
    await eventually(() => journal.pending === 0, 5000, "all marked");
    expect(pub.stats().lastError).toBeUndefined();
  });

  it("refuses a broker whose certificate the configured CA did not sign, retrying without crashing", async () => {
    const pki = createTestPki();
    const broker = await startMosquitto({ tls: pki });
    cleanup.push(() => broker.stop());
    const baseline = openHandles();
    const captured = captureLog();
    const journal = new MemoryJournal();
    await journal.append([telemetry(1)]);
    const pub = new Publisher({
      journal,
      mqtt: mqttConfig(broker.url, { ca: pki.otherCaFile }),
      clientId: "pub-wrong-ca",
      status: testStatus,
      log: captured.log,
    });
    pub.start();
    await eventually(
      () => (captured.text().match(/MQTT connect failed/g) ?? []).length >= 2,
      10_000,
      "two failed attempts",
    );
    expect(pub.connected).toBe(false);
    expect(pub.stats().lastError).toMatch(/certificate/i);
    expect(pub.stats().lastError).toContain("check mqtt.ca");
    expect(journal.records.every((r) => !r.published)).toBe(true);
    await pub.stop();
    await expectHandlesBackTo(baseline);
  });
});

describe("username and password", () => {
  const USER = "gateway";
  const PASSWORD = "right-Pa55-7f3a";
  const WRONG = "wrong-Pa55-91c2";

  it("publishes with the right password", async () => {
    const broker = await startMosquitto({ passwordFile: createPasswordFile(USER, PASSWORD) });
    cleanup.push(() => broker.stop());
    const sub = await subscribe(broker.url, "test/telemetry/#", {
      username: USER,
      password: PASSWORD,
    });
    cleanup.push(() => sub.close());
    const captured = captureLog();
    const journal = new MemoryJournal();
    await journal.append([telemetry(1)]);
    const pub = new Publisher({
      journal,
      mqtt: { ...mqttConfig(broker.url, { username: USER }), password: PASSWORD },
      clientId: "pub-auth",
      status: testStatus,
      log: captured.log,
    });
    pub.start();
    cleanup.push(() => pub.stop());
    await sub.waitFor(1);
    await pub.stop();
    await new Promise((r) => setImmediate(r));
    expect(captured.text()).toContain("MQTT connected");
    expect(captured.text()).not.toContain(PASSWORD);
  });

  it("retries a refused login with backoff and never logs the password", async () => {
    const broker = await startMosquitto({ passwordFile: createPasswordFile(USER, PASSWORD) });
    cleanup.push(() => broker.stop());
    const captured = captureLog();
    const journal = new MemoryJournal();
    const pub = new Publisher({
      journal,
      mqtt: { ...mqttConfig(broker.url, { username: USER }), password: WRONG },
      clientId: "pub-bad-auth",
      status: testStatus,
      log: captured.log,
    });
    pub.start();
    cleanup.push(() => pub.stop());
    await eventually(
      () => (captured.text().match(/MQTT connect failed/g) ?? []).length >= 3,
      10_000,
      "three refused attempts",
    );
    expect(pub.connected).toBe(false);
    expect(pub.stats().lastError).toMatch(/Connection refused: (Not authorized|Bad User Name)/);
    await pub.stop();
    const text = captured.text();
    expect(text).toMatch(/"level":40.*Connection refused/); // the first refusal at warn
    expect(text).not.toContain(WRONG);
    expect(text).not.toContain(PASSWORD);
  });
});

describe("point 7: what a failed connect says", () => {
  it("mqtt:// pointed at a TLS port says the broker may expect TLS (mqtts://)", async () => {
    const pki = createTestPki();
    const broker = await startMosquitto({ tls: pki });
    cleanup.push(() => broker.stop());
    const plain = broker.url.replace(/^mqtts:/, "mqtt:");
    const captured = captureLog();
    const pub = new Publisher({
      journal: new MemoryJournal(),
      mqtt: mqttConfig(plain),
      clientId: "pub-plain-on-tls",
      status: testStatus,
      log: captured.log,
    });
    pub.start();
    cleanup.push(() => pub.stop());
    await eventually(() => pub.stats().lastError !== undefined, 10_000, "a failed attempt");
    expect(pub.connected).toBe(false);
    expect(pub.stats().lastError).toContain(`if port ${broker.port} expects TLS, use mqtts://`);
    await pub.stop();
    expect(captured.text()).toMatch(/"level":40.*expects TLS, use mqtts:/);
  });

  it("a broker without retained messages: the refusal says to set mqtt.retain: false, and with it the publisher connects and delivers status unretained", async () => {
    const broker = await startMosquitto({ config: ["retain_available false"] });
    cleanup.push(() => broker.stop());
    const refused = new Publisher({
      journal: new MemoryJournal(),
      mqtt: mqttConfig(broker.url),
      clientId: "pub-retain-refused",
      status: testStatus,
      log: silentLogger(),
    });
    refused.start();
    await eventually(() => refused.stats().lastError !== undefined, 10_000, "a refusal");
    expect(refused.stats().lastError).toMatch(/Retain not supported/i);
    expect(refused.stats().lastError).toContain("set mqtt.retain: false");
    await refused.stop();

    const sub = await subscribe(broker.url, "test/#");
    cleanup.push(() => sub.close());
    const journal = new MemoryJournal();
    await journal.append([telemetry(1)]);
    const pub = new Publisher({
      journal,
      mqtt: mqttConfig(broker.url, { retain: false }),
      clientId: "pub-no-retain",
      status: testStatus,
      log: silentLogger(),
    });
    pub.start();
    cleanup.push(() => pub.stop());
    // the online status (retained in the journal's eyes) and the telemetry: both acknowledged
    await eventually(() => journal.pending === 0, 10_000, "everything published");
    await sub.waitFor(2);
    expect(sub.messages.map((m) => m.topic)).toContain("test/status/gateway");
    expect(sub.messages.every((m) => !m.retain)).toBe(true);
    const status = await pub.publishStatus({ topic: "test/health", payload: "{}", retain: true });
    expect(status).toBe(true);
    expect(pub.connected).toBe(true);
    expect(pub.stats().reconnects).toBe(0);
  });
});
