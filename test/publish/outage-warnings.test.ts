/**
 * Each broker outage is logged (issue 13.7): the publisher logs a repeated error text at debug
 * only while one problem lasts. Two short outages that end the same way ("socket closed"),
 * each over before the first reconnect attempt, must both be warnings: a connection made in
 * between ends the first problem. Real mosquitto, a backoff pinned long enough (random 1) that
 * the broker is back before the first attempt.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Publisher } from "../../src/publish/publisher.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { captureLog, mqttConfig, telemetry, testStatus } from "./fixtures.ts";
import { MemoryJournal } from "./memory-journal.ts";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe("broker outage warnings", () => {
  it("point 7: a second outage that ends like the first is still a warning", async () => {
    const broker = await startMosquitto();
    cleanup.push(() => broker.stop());
    const captured = captureLog("debug");
    const journal = new MemoryJournal();
    await journal.append([telemetry(1)]);
    const pub = new Publisher({
      journal,
      mqtt: mqttConfig(broker.url, { reconnect_min: "2s", reconnect_max: "2s" }),
      clientId: "pub-outages",
      status: testStatus,
      log: captured.log,
      random: () => 1,
    });
    pub.start();
    cleanup.push(() => pub.stop());
    const lines = () =>
      captured
        .text()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { level: number; msg: string });
    const count = (msg: string) => lines().filter((l) => l.msg === msg).length;
    await eventually(() => pub.connected, 10_000, "connected");
    for (let outage = 1; outage <= 2; outage++) {
      await broker.stop();
      await eventually(() => !pub.connected, 10_000, `outage ${outage} noticed`);
      await broker.start();
      await eventually(() => count("MQTT connected") === outage + 1, 15_000, "reconnected");
    }
    expect(count("MQTT connect failed")).toBe(0); // each outage was over before an attempt
    const lost = lines().filter((l) => l.msg === "MQTT connection lost");
    expect(lost.map((l) => l.level)).toEqual([40, 40]);
  });
});
