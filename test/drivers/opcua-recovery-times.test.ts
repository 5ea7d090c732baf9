/**
 * Issue 11, point 10, through the real path (Gateway.start: DriverRunner, OPC UA driver,
 * engine, journal): the OPC UA simulator runs in a process of its own and really hangs
 * (SIGSTOP) until the gateway has marked its tags bad, then resumes (SIGCONT). The value did
 * not change meanwhile, so it comes back with the source timestamp of its last change, from
 * before the outage. The tags' return to good must be dated when the gateway observed it: at
 * or after the quality.changed that marked them bad (and after the resume), with the value's
 * own source time in data.source_time. A subscribed tag and a polled one; every event is
 * validated against the events schema.
 */
import "node-opcua";
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Gateway } from "../../src/app/gateway.ts";
import { parseConfig } from "../../src/config/load.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { assertValidEvents } from "../support/event-schema.ts";
import { eventually } from "../support/resources.ts";
import { NSU } from "./opcua-fixture.ts";

const SIMULATOR = join(import.meta.dirname, "opcua-simulator-process.ts");
const DEVICE = "stand-1";
const TAGS = ["depth", "depth_polled"] as const;

let dir: string;
let child: ChildProcess | undefined;
let gateway: Gateway | undefined;

interface Doc {
  type: string;
  subject: string;
  time: string;
  data: Record<string, unknown>;
}

function events(subject: string, type: string): Doc[] {
  const records = gateway!.journal.query({ device: DEVICE, subject, type });
  assertValidEvents(records.map((r) => r.payload));
  return records.map((r) => JSON.parse(r.payload) as Doc);
}

const qualityChanges = (tag: string) => events(tag, "plc2mqtt.quality.changed");
const at = (iso: unknown) => Date.parse(iso as string);

/** Starts the simulator process; resolves with what it printed once it listens. */
async function startSimulator(pkiDir: string) {
  const proc = spawn(process.execPath, [SIMULATOR, pkiDir, JSON.stringify({ Measurement1: 42 })], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  child = proc;
  const lines = createInterface({ input: proc.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    proc.once("exit", (code) => reject(new Error(`the simulator process exited (${code})`)));
  });
  return JSON.parse(first) as { endpointUrl: string; serverCertificateFile: string };
}

async function stopSimulator(): Promise<void> {
  const proc = child;
  child = undefined;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGCONT");
  proc.stdin?.end();
  const killer = setTimeout(() => proc.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(killer);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "plc2mqtt-opcua-recovery-"));
  const sim = await startSimulator(join(dir, "sim"));
  const dataDir = join(dir, "data");
  mkdirSync(join(dataDir, "pki", "trusted", "certs"), { recursive: true });
  copyFileSync(sim.serverCertificateFile, join(dataDir, "pki", "trusted", "certs", "sim.pem"));
  // keep-alive every 1 s, each request bounded by 1 s: a hung server is noticed in seconds
  const text = `version: 1
gateway: { id: recovery-gw, data_dir: ${dataDir} }
journal: { commit_interval: 10ms }
http: { listen: false }
devices:
  - id: ${DEVICE}
    protocol: opcua
    endpoint: ${sim.endpointUrl}
    publishing_interval: 100ms
    sampling_interval: 0ms
    request_timeout: 1s
    session_timeout: 3s
    reconnect_min: 200ms
    reconnect_max: 1s
    tags:
      - { name: depth, node: "${NSU}Measurement1", type: double }
      - { name: depth_polled, node: "${NSU}Measurement1", type: double, mode: poll,
          poll_interval: 200ms }
`;
  const { config } = parseConfig(text, { file: join(dir, "gateway.yaml"), env: {}, baseDir: dir });
  gateway = await Gateway.start({ config, log: silentLogger(), version: "0.0.0-test" });
  await eventually(
    () => TAGS.every((t) => events(t, "plc2mqtt.telemetry").length > 0),
    30_000,
    "the first values",
  );
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await stopSimulator();
  rmSync(dir, { recursive: true, force: true });
});

describe("OPC UA: a server that hangs and resumes", () => {
  it("dates the tags' return to good when the gateway saw it, the value's source time in data", async () => {
    // the value's source time: the time of its initial telemetry (a good sample's source time)
    const sourceTime = new Map(TAGS.map((t) => [t, at(events(t, "plc2mqtt.telemetry")[0]!.time)]));

    child!.kill("SIGSTOP");
    const hungAt = Date.now();
    await eventually(
      () => TAGS.every((t) => qualityChanges(t).some((e) => e.data.quality === "bad")),
      30_000,
      "the tags marked bad while the server hangs",
    );
    // and a reconnect attempt failed against the hung server (it accepts TCP, answers nothing)
    await eventually(
      () => events(DEVICE, "plc2mqtt.device.status").some((e) => e.data.status === "failed"),
      30_000,
      "a connect attempt failed while the server hangs",
    );
    const resumedAt = Date.now();
    child!.kill("SIGCONT");
    await eventually(
      () =>
        TAGS.every((t) =>
          qualityChanges(t).some(
            (e) => e.data.quality === "good" && e.data.previous_quality === "bad",
          ),
        ),
      30_000,
      "the tags good again after the resume",
    );

    for (const tag of TAGS) {
      const changes = qualityChanges(tag);
      const bad = changes.find((e) => e.data.quality === "bad")!;
      const good = changes.find(
        (e) => e.data.quality === "good" && e.data.previous_quality === "bad",
      )!;
      expect(at(bad.time), `${tag}: marked bad while the server hung`).toBeGreaterThanOrEqual(
        hungAt,
      );
      // the value did not change: it came back with the source time of its last change, from
      // before the outage ...
      expect(good.data.source_time, tag).toBe(new Date(sourceTime.get(tag)!).toISOString());
      expect(at(good.data.source_time), tag).toBeLessThan(at(bad.time));
      // ... and its return to good is dated when the gateway observed it
      expect(at(good.time), `${tag}: good vs the bad it ends`).toBeGreaterThanOrEqual(at(bad.time));
      expect(at(good.time), `${tag}: good vs the resume`).toBeGreaterThanOrEqual(resumedAt);
      // sorted by time, the outage ends: the last quality change is good
      const sorted = [...changes].sort((a, b) => at(a.time) - at(b.time));
      expect(sorted.at(-1)!.data.quality, tag).toBe("good");
      // no telemetry for the unchanged value
      expect(
        events(tag, "plc2mqtt.telemetry").map((e) => e.data.value),
        tag,
      ).toEqual([42]);
    }
  }, 90_000);
});
