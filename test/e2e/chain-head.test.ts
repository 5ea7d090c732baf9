/**
 * The chain head outside the edge PC (issue 14), end to end: a real `plc2mqtt run` (Modbus
 * simulator, mosquitto) publishes `chain: { sequence, hash }` in its retained health message
 * and, at a clean stop, in its retained gateway status (valid against the events schema).
 * Each is an anchor that `plc2mqtt events verify --anchor SEQ:HASH` accepts on the journal the
 * gateway left; a record changed after the anchor makes it exit 1 naming that record.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, expect, it } from "vitest";
import { journalPath } from "../../src/journal/store.ts";
import { runCli } from "../support/cli.ts";
import { assertValidEvent } from "../support/event-schema.ts";
import { type Broker, startMosquitto, subscribe } from "../support/mosquitto.ts";
import {
  type GatewayFiles,
  type Plant,
  startGateway,
  startPlant,
  writeGatewayConfig,
} from "./harness.ts";

let plant: Plant;
let broker: Broker;
let files: GatewayFiles;

beforeAll(async () => {
  plant = await startPlant();
  broker = await startMosquitto();
  files = writeGatewayConfig(plant.sim.port, broker.url);
});

afterAll(async () => {
  await plant?.close();
  await broker?.stop();
  if (files) rmSync(files.dir, { recursive: true, force: true });
});

interface Chain {
  sequence: string;
  hash: string;
}

it("publishes the chain head in the retained health and status messages: valid anchors", async () => {
  // the harness' config with the health message on, every second
  const text = readFileSync(files.config, "utf8").replace(
    "health: { topic_interval: false }",
    "health: { topic_interval: 1s }",
  );
  writeFileSync(files.config, text);
  const sub = await subscribe(broker.url, `${files.base}/#`);
  plant.run(20);
  const gateway = startGateway(files.config);
  const healthWithChain = () =>
    sub.messages
      .filter((m) => m.topic.endsWith("/health"))
      .map((m) => JSON.parse(m.payload) as { chain?: Chain })
      .filter((h) => h.chain !== undefined);
  const deadline = Date.now() + 30_000;
  while (healthWithChain().length < 2) {
    if (Date.now() > deadline)
      throw new Error(`no health message with a chain:\n${gateway.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  plant.pause();
  expect(await gateway.stop()).toBe(0);
  await sub.close();
  const fromHealth = healthWithChain()[0]!.chain!;
  expect(fromHealth.sequence).toMatch(/^\d{20}$/);
  expect(fromHealth.hash).toMatch(/^[0-9a-f]{64}$/);

  // what a consumer finds retained after the stop
  const retained = await subscribe(broker.url, `${files.base}/#`);
  await retained.waitFor(2);
  await retained.close();
  const status = retained.messages
    .map((m) => JSON.parse(m.payload) as Record<string, unknown>)
    .find((d) => d.type === "plc2mqtt.gateway.status");
  expect(status).toBeDefined();
  assertValidEvent(status);
  const data = status!.data as { status: string; chain?: Chain };
  expect(data.status).toBe("offline");
  expect(data.chain).toBeDefined();

  for (const anchor of [fromHealth, data.chain!]) {
    const run = await runCli([
      "events",
      "verify",
      "-c",
      files.config,
      "--anchor",
      `${BigInt(anchor.sequence)}:${anchor.hash}`,
    ]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/chain intact: .* anchor matches$/m);
  }

  // a record after the health anchor changed by hand: named
  const target = BigInt(fromHealth.sequence) + 1n;
  const db = new DatabaseSync(journalPath(files.dataDir));
  const payload = `${String(db.prepare("SELECT payload FROM records WHERE sequence = ?").get(target)?.payload)} `;
  db.prepare("UPDATE records SET payload = ?, crc = ? WHERE sequence = ?").run(
    payload,
    crc32(payload),
    target,
  );
  db.close();
  const broken = await runCli([
    "events",
    "verify",
    "-c",
    files.config,
    "--anchor",
    `${BigInt(fromHealth.sequence)}:${fromHealth.hash}`,
  ]);
  expect(broken.code).toBe(1);
  expect(broken.stdout).toContain(
    `chain broken at sequence ${target}: record ${target} was modified`,
  );
}, 120_000);
