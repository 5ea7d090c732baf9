/**
 * Issue 8.3 on OPC UA, through the real path (Gateway.start: DriverRunner, engine, journal)
 * against the bundled simulator. Each cycle writes BatchId, Result and SerialNumber and raises
 * ResultReady in one PLC cycle (setMany: one source timestamp). The trigger is monitored at
 * sampling_interval 0ms (as config/example.yaml recommends for pulses); the snapshot tags are
 * monitored at 1000 ms on one device ("stand-sub") and polled every 2 s on another
 * ("stand-poll"). Every trigger event's snapshot and context must hold that cycle's values; a
 * snapshot node that reads bad at the trigger is null with the status in snapshot_errors.
 * (ready_low, a falling trigger on the same node, shows when the gateway saw the pulse end.)
 */
import "node-opcua";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Gateway } from "../../src/app/gateway.ts";
import { parseConfig } from "../../src/config/load.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { assertValidEvents } from "../support/event-schema.ts";
import { eventually } from "../support/resources.ts";
import { NSU, type OpcuaFixture, startOpcuaFixture } from "./opcua-fixture.ts";

let fixture: OpcuaFixture;
let gateway: Gateway;

const DEVICES = ["stand-sub", "stand-poll"] as const;

interface Doc {
  data: {
    snapshot: Record<string, unknown>;
    snapshot_errors?: Record<string, string>;
    context?: Record<string, unknown>;
  };
}

function triggerEvents(device: string, type = "quality.result"): Doc[] {
  const records = gateway.journal.query({ type, device });
  assertValidEvents(records.map((r) => r.payload));
  return records.map((r) => JSON.parse(r.payload) as Doc);
}

/** Lowers ResultReady and waits until both devices saw it low (so the next raise is an edge). */
async function lower(): Promise<void> {
  const before = DEVICES.map((d) => triggerEvents(d, "ready.cleared").length);
  fixture.sim.set("ResultReady", false);
  await eventually(
    () => DEVICES.every((d, i) => triggerEvents(d, "ready.cleared").length > before[i]!),
    10_000,
    "ResultReady seen low",
  );
}

function device(id: string, slow: string): string {
  return `
  - id: ${id}
    protocol: opcua
    endpoint: ${fixture.sim.endpointUrl}
    publishing_interval: 50ms
    sampling_interval: 1000ms
    request_timeout: 2s
    context: [serial]
    tags:
      - { name: ready, node: "${NSU}ResultReady", type: boolean, sampling_interval: 0ms,
          queue_size: 4,
          trigger: { on: rising, event: quality.result, snapshot: [batch, result, serial] } }
      - { name: ready_low, node: "${NSU}ResultReady", type: boolean, sampling_interval: 0ms,
          trigger: { on: falling, event: ready.cleared } }
      - { name: result, node: "${NSU}Result", type: int32 }
      - { name: batch, node: "${NSU}BatchId", type: string, ${slow} }
      - { name: serial, node: "${NSU}SerialNumber", type: string, ${slow} }`;
}

beforeAll(async () => {
  fixture = await startOpcuaFixture();
  fixture.sim.setMany({ BatchId: "B0", Result: 0, SerialNumber: "SN-0", ResultReady: false });
  const text = `version: 1
gateway: { id: snap-gw, data_dir: ${fixture.dataDir} }
journal: { commit_interval: 10ms }
http: { listen: false }
devices:${device("stand-sub", "mode: subscribe")}${device("stand-poll", "mode: poll, poll_interval: 2s")}
`;
  const dir = fixture.dir;
  const { config } = parseConfig(text, { file: join(dir, "gateway.yaml"), env: {}, baseDir: dir });
  gateway = await Gateway.start({ config, log: silentLogger(), version: "0.0.0-test" });
  // the first publish (which carries every monitored item's first value, ready's too) and the
  // first poll are in: edges can fire from now on
  await eventually(
    () =>
      DEVICES.every((d) =>
        ["result", "batch"].every((t) => gateway.journal.query({ device: d, subject: t }).length),
      ),
    30_000,
    "the first values of both devices",
  );
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await fixture?.close();
});

describe("OPC UA: a trigger's snapshot is read at the trigger", () => {
  it("holds the values of the trigger's cycle, snapshot tags sampled or polled slower", async () => {
    const cycles = 5;
    for (let i = 1; i <= cycles; i++) {
      fixture.sim.setMany({
        BatchId: `B${i}`,
        Result: 1 + (i % 2),
        SerialNumber: `SN-${i}`,
        ResultReady: true,
      });
      await eventually(
        () => DEVICES.every((d) => triggerEvents(d).length === i),
        10_000,
        `trigger event ${i} of both devices`,
      );
      await lower();
    }
    for (const id of DEVICES) {
      const events = triggerEvents(id);
      expect(
        events.map((e) => e.data.snapshot),
        id,
      ).toEqual(
        Array.from({ length: cycles }, (_, k) => ({
          batch: `B${k + 1}`,
          result: 1 + ((k + 1) % 2),
          serial: `SN-${k + 1}`,
        })),
      );
      expect(
        events.map((e) => e.data.context),
        id,
      ).toEqual(Array.from({ length: cycles }, (_, k) => ({ serial: `SN-${k + 1}` })));
      expect(events.every((e) => e.data.snapshot_errors === undefined)).toBe(true);
    }
  }, 60_000);

  it("a snapshot node that reads bad at the trigger is null with its status", async () => {
    const before = DEVICES.map((d) => triggerEvents(d).length);
    fixture.sim.setStatus("Result", "BadSensorFailure");
    fixture.sim.setMany({ BatchId: "B9", SerialNumber: "SN-9", ResultReady: true });
    await eventually(
      () => DEVICES.every((d, i) => triggerEvents(d).length === before[i]! + 1),
      10_000,
      "the trigger events",
    );
    await lower();
    for (const id of DEVICES) {
      const last = triggerEvents(id).at(-1)!;
      expect(last.data.snapshot, id).toEqual({ batch: "B9", result: null, serial: "SN-9" });
      expect(Object.keys(last.data.snapshot_errors ?? {}), id).toEqual(["result"]);
      expect(last.data.snapshot_errors?.result, id).toMatch(/BadSensorFailure/);
    }
  }, 30_000);
});
