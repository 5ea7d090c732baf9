/**
 * End-to-end harness: the built CLI as a real process, the bundled Modbus simulator, a real
 * mosquitto, and a subscriber that keeps everything it receives. The plant produces a known
 * stream of changes: a counter the test bumps on a timer, read by the gateway every 50 ms.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, beforeAll } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { openJournal } from "../../src/journal/index.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { spawnCli } from "../support/cli.ts";
import { assertValidBatch, assertValidEvent } from "../support/event-schema.ts";
import { type Broker, type MosquittoOptions, startMosquitto } from "../support/mosquitto.ts";

export interface Plant {
  sim: ModbusSimulator;
  /** Changes made so far. */
  readonly changes: number;
  /** Starts or stops bumping the counter every `everyMs`. */
  run(everyMs: number): void;
  pause(): void;
  close(): Promise<void>;
}

export async function startPlant(): Promise<Plant> {
  const sim = await startModbusSimulator({ port: 0 });
  let changes = 0;
  let timer: NodeJS.Timeout | undefined;
  sim.setRegisters(1, "HR0", [0]);
  sim.setRegisters(1, "HR1", [0]);
  const plant: Plant = {
    sim,
    get changes() {
      return changes;
    },
    run(everyMs) {
      plant.pause();
      timer = setInterval(() => {
        changes += 1;
        sim.setRegisters(1, "HR0", [changes & 0xffff]);
        sim.setRegisters(1, "HR1", [changes % 3]);
      }, everyMs);
    },
    pause() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    close: async () => {
      plant.pause();
      await sim.close();
    },
  };
  return plant;
}

export interface GatewayFiles {
  /** The MQTT base topic of this gateway: unique per call, so retained messages of other tests never mix in. */
  base: string;
  dir: string;
  config: string;
  dataDir: string;
}

/**
 * `extra` is appended to the file (more tags of the device, more devices); `mqtt`, keys added
 * to the mqtt section's flow mapping, such as `batch: { classes: [telemetry] }`; `device`,
 * lines of more keys of the device `plc`, such as `io_thread: true`.
 */
export function writeGatewayConfig(
  simPort: number,
  brokerUrl: string,
  extra = "",
  options: { mqtt?: string; device?: string } = {},
): GatewayFiles {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-e2e-"));
  const base = `e2e-${Math.random().toString(36).slice(2, 8)}`;
  const dataDir = join(dir, "data");
  const config = join(dir, "gateway.yaml");
  writeFileSync(
    config,
    `version: 1
gateway: { id: e2e-gw, site: testsite, data_dir: ${dataDir} }
mqtt: { url: "${brokerUrl}", base_topic: ${base}, reconnect_min: 100ms, reconnect_max: 1s${options.mqtt ? `, ${options.mqtt}` : ""} }
journal: { commit_interval: 20ms }
http: { listen: false, health: { topic_interval: false } }
devices:
  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${simPort}
    area: assembly
    line: line-2
    poll_interval: 50ms
    reconnect_min: 100ms
    reconnect_max: 1s
${options.device ? `    ${options.device}\n` : ""}    tags:
      - { name: counter, address: HR0, type: uint16 }
      - { name: mode, address: HR1, type: uint16, states: { 0: idle, 1: run, 2: clean } }
${extra}`,
  );
  return { base, dir, config, dataDir };
}

export interface GatewayProcess {
  child: ChildProcess;
  /** Everything it logged (JSON lines on stdout, errors on stderr). */
  output(): string;
  /** SIGTERM and wait for a clean exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
}

/** The built CLI's `run` at log level info; `extraArgs` go after (e.g. other log options). */
export function startGateway(
  configPath: string,
  extraArgs: readonly string[] = [],
): GatewayProcess {
  const child = spawnCli(["run", "-c", configPath, "--log-level", "info", ...extraArgs]);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

export interface Received {
  topic: string;
  retain: boolean;
  /** Set when the event came in a batch (application/cloudevents-batch+json). */
  batch?: {
    /** The message's number among the messages this subscriber received (from 0). */
    message: number;
    /** The event's place in the batch, and the batch's size. */
    index: number;
    size: number;
  };
  event: {
    id: string;
    sequence: string;
    type: string;
    subject: string;
    data: Record<string, unknown>;
  } & Record<string, unknown>;
}

/**
 * A consumer with a persistent session (clean: false, QoS 1), so that the broker keeps what is
 * published for it while it is disconnected. Every message is validated against the events
 * JSON Schema as it arrives; a batch (a JSON array, validated as a batch document) is kept as
 * its events, in order, each marked with the batch it came in: `messages` is the stream of
 * events either way.
 */
export async function startSubscriber(
  url: string,
  topic: string,
): Promise<{ messages: Received[]; close(): Promise<void> }> {
  const messages: Received[] = [];
  const client = await mqtt.connectAsync(url, {
    clientId: `e2e-sub-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    clean: false,
    reconnectPeriod: 100,
  });
  let count = 0;
  client.on("message", (t, payload, packet) => {
    const doc = JSON.parse(payload.toString("utf8"));
    const message = count++;
    if (!Array.isArray(doc)) {
      assertValidEvent(doc);
      messages.push({ topic: t, retain: packet.retain, event: doc });
      return;
    }
    assertValidBatch(doc);
    doc.forEach((event, index) => {
      messages.push({
        topic: t,
        retain: packet.retain,
        event,
        batch: { message, index, size: doc.length },
      });
    });
  });
  await client.subscribeAsync(topic, { qos: 1 });
  return { messages, close: () => client.endAsync() };
}

/** The journaled stream as the consumer must reconstruct it: de-duplicated by id, in arrival order. */
export function deduplicate(messages: readonly Received[]): Received[] {
  const seen = new Map<string, string>();
  const unique: Received[] = [];
  for (const m of messages) {
    const payload = JSON.stringify(m.event);
    const first = seen.get(m.event.id);
    if (first !== undefined) {
      if (first !== payload)
        throw new Error(`id ${m.event.id} was sent twice with different content`);
      continue;
    }
    seen.set(m.event.id, payload);
    unique.push(m);
  }
  return unique;
}

/** The last will repeats the sequence of the online event it ends: it is not part of the stream. */
export function isWill(m: Received): boolean {
  return m.event.id.includes("-will-");
}

export async function waitUntil(
  check: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every sequence number the journal in `dataDir` holds (run after the gateway stopped). */
export async function journalRecords(dataDir: string): Promise<bigint[]> {
  const journal = await openJournal({
    dir: dataDir,
    gatewayId: "e2e-gw",
    maxBytes: 2 ** 40,
    retentionMs: 365 * 86_400_000,
    commitIntervalMs: 10,
    commitMaxEvents: 1000,
    render: () => {
      throw new Error("read only: nothing is appended");
    },
    log: silentLogger(),
  });
  try {
    return journal.query({ limit: 10_000_000 }).map((r) => r.sequence);
  } finally {
    await journal.close();
  }
}

type Subscriber = Awaited<ReturnType<typeof startSubscriber>>;

/** Waits for the gateway's first telemetry event at the subscriber. */
export function firstTelemetry(sub: Subscriber): Promise<void> {
  return waitUntil(
    () => sub.messages.some((m) => m.event.type === "plc2mqtt.telemetry"),
    15_000,
    "first telemetry",
  );
}

/** Stops the plant and waits until its last change arrived as a counter event. */
export async function lastChangeArrives(plant: Plant, sub: Subscriber): Promise<void> {
  plant.pause();
  const last = plant.changes & 0xffff;
  await waitUntil(
    () => sub.messages.some((m) => m.event.subject === "counter" && m.event.data.value === last),
    30_000,
    "the last change to arrive",
  );
}

/**
 * A clean stop: exit 0, then the retained clean offline status (not the will) arrives, stamped
 * at the stop (an earlier offline, from a run that ended before it connected, does not count).
 */
export async function stopsCleanly(
  gateway: GatewayProcess,
  sub: Subscriber,
): Promise<number | null> {
  const stoppedAt = Date.now();
  const code = await gateway.stop();
  await waitUntil(
    () =>
      sub.messages.some(
        (m) =>
          m.event.data.status === "offline" &&
          !isWill(m) &&
          Date.parse(String(m.event.time)) >= stoppedAt,
      ),
    10_000,
    "the clean offline status",
  );
  return code;
}

/**
 * The consumer's view must hold every journaled event, de-duplicated by id, with no gap in the
 * sequence (the will aside); returns that stream.
 */
export function expectGapFreeAndComplete(
  messages: readonly Received[],
  journal: readonly bigint[],
): Received[] {
  const stream = deduplicate(messages).filter((m) => !isWill(m));
  const sequences = stream.map((m) => BigInt(m.event.sequence));
  for (let i = 1; i < sequences.length; i++) {
    if (sequences[i] !== sequences[i - 1]! + 1n) {
      throw new Error(
        `sequence ${sequences[i]} follows ${sequences[i - 1]}: a gap or a reordering`,
      );
    }
  }
  const received = new Set(sequences);
  const missing = journal.filter((s) => !received.has(s));
  if (missing.length > 0)
    throw new Error(`journaled but never received: ${missing.slice(0, 20).join(", ")}`);
  return stream;
}

/** A real mosquitto and the plant for one describe block: started before its tests, closed after. */
export function usePlantAndBroker(options: MosquittoOptions = {}): {
  broker: Broker;
  plant: Plant;
} {
  const env = {} as { broker: Broker; plant: Plant };
  beforeAll(async () => {
    env.broker = await startMosquitto(options);
    env.plant = await startPlant();
  });
  afterAll(async () => {
    await env.plant?.close();
    await env.broker?.stop();
  });
  return env;
}
