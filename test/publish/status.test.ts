/**
 * The retained gateway status: online while connected, the last will (`lost`) when the
 * publisher's process dies (kill -9), the clean `offline` after stop() with no will published.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/lib/logger.ts";
import { Publisher } from "../../src/publish/publisher.ts";
import { type Broker, type Received, startMosquitto, subscribe } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { mqttConfig, testStatus } from "./fixtures.ts";
import { MemoryJournal } from "./memory-journal.ts";

const CHILD = fileURLToPath(new URL("./fixtures/publisher-child.ts", import.meta.url));
const STATUS = "test/status/gateway";

let broker: Broker;
beforeAll(async () => {
  broker = await startMosquitto();
});
afterAll(async () => {
  await broker.stop();
});

function statusOf(m: Received): string {
  return (JSON.parse(m.payload) as { data: { status: string } }).data.status;
}

/** What a client connecting now gets as the retained status. */
async function retainedStatus(): Promise<Received> {
  const sub = await subscribe(broker.url, STATUS);
  try {
    await sub.waitFor(1);
    return sub.messages[0]!;
  } finally {
    await sub.close();
  }
}

/** Publishes a marker and waits for it on `sub`: everything the broker sent before is in. */
async function barrier(sub: { messages: Received[] }): Promise<void> {
  const marker = `marker-${Math.random()}`;
  const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
  await client.publishAsync("test/status/marker", marker, { qos: 1 });
  await client.endAsync();
  await eventually(() => sub.messages.some((m) => m.payload === marker), 5000, "the marker");
}

describe("gateway status", () => {
  it("is retained online while connected and the clean offline after stop(), without the will", async () => {
    const journal = new MemoryJournal();
    const pub = new Publisher({
      journal,
      mqtt: mqttConfig(broker.url),
      clientId: "pub-status",
      status: testStatus,
      log: silentLogger(),
    });
    pub.start();
    await eventually(() => journal.records.length > 0 && journal.pending === 0, 5000, "online");
    const online = await retainedStatus();
    expect(online).toMatchObject({ topic: STATUS, retain: true });
    expect(statusOf(online)).toBe("online");

    const live = await subscribe(broker.url, "test/status/#");
    await live.waitFor(1); // the retained online
    await pub.stop();
    await barrier(live);
    await live.close();
    const seen = live.messages.filter((m) => m.topic === STATUS).map(statusOf);
    expect(seen).toEqual(["online", "offline"]); // no `lost`: the will was discarded
    expect(statusOf(await retainedStatus())).toBe("offline");
    expect(journal.pending).toBe(0);
  });

  it("becomes the last will when the publisher's process is killed with SIGKILL", async () => {
    const child = spawn(process.execPath, [CHILD, broker.url, "pub-child"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    try {
      let out = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        out += chunk;
      });
      await eventually(() => out.includes("ready"), 15_000, "the child publisher");
      const live = await subscribe(broker.url, STATUS);
      await live.waitFor(1);
      expect(statusOf(live.messages[0]!)).toBe("online");

      child.kill("SIGKILL");
      await exited;
      await live.waitFor(2);
      await live.close();
      expect(live.messages[1]!.payload).toContain("-will");
      expect(statusOf(live.messages[1]!)).toBe("lost");
      const retained = await retainedStatus();
      expect(retained.retain).toBe(true);
      expect(statusOf(retained)).toBe("lost");
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
  });
});
