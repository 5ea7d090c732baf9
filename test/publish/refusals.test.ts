/**
 * What the broker refuses: a publish its ACL denies (MQTT 5 PUBACK reason code) is never marked
 * published; the publisher logs it, reconnects with backoff, and delivers it once the ACL allows
 * it. A password without a user name is refused at construction.
 */
import { afterEach, describe, expect, it } from "vitest";
import { isGatewayError } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { Publisher } from "../../src/publish/publisher.ts";
import { startMosquitto, subscribe } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { captureLog, mqttConfig, telemetry, testStatus } from "./fixtures.ts";
import { MemoryJournal } from "./memory-journal.ts";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const STRICT = "topic readwrite test/status/#\ntopic readwrite test/telemetry/counter\n";
const OPEN = "topic readwrite test/#\n";

describe("broker refusals", () => {
  it("does not mark a publish the ACL refuses; delivers it once the ACL allows it", async () => {
    const broker = await startMosquitto({ acl: STRICT });
    cleanup.push(() => broker.stop());
    const sub = await subscribe(broker.url, "test/telemetry/#");
    cleanup.push(() => sub.close());
    const captured = captureLog();
    const journal = new MemoryJournal();
    const [, denied] = await journal.append([
      telemetry(1),
      { ...telemetry(2), subject: "secret" },
      telemetry(3),
    ]);
    const pub = new Publisher({
      journal,
      mqtt: mqttConfig(broker.url),
      clientId: "pub-acl",
      status: testStatus,
      log: captured.log,
    });
    pub.start();
    cleanup.push(() => pub.stop());
    await eventually(() => pub.stats().reconnects >= 2, 10_000, "retries after the refusal");
    expect(denied!.published).toBeFalsy();
    expect(pub.stats().lastError).toMatch(
      /publish to test\/telemetry\/secret refused.*Not authorized/,
    );
    expect(captured.text()).toContain("MQTT broker refused a publish");

    broker.setAcl(OPEN);
    await eventually(() => journal.pending === 0, 10_000, "everything published");
    await sub.waitFor(3);
    expect(sub.messages.map((m) => m.topic)).toContain("test/telemetry/secret");
  });

  it("refuses a password without a user name at construction", () => {
    let thrown: unknown;
    try {
      new Publisher({
        journal: new MemoryJournal(),
        mqtt: { ...mqttConfig("mqtt://127.0.0.1:1883"), password: "x" },
        clientId: "pub",
        status: testStatus,
        log: silentLogger(),
      });
    } catch (err) {
      thrown = err;
    }
    expect(isGatewayError(thrown, "CONFIG_INVALID")).toBe(true);
  });
});
