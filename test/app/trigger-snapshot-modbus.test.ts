/**
 * Issue 8.3 on Modbus, through the real path (Gateway.start: DriverRunner, engine, journal)
 * against the bundled simulator: the trigger coil is polled every 50 ms, the snapshot and
 * context tags every 2 s. Each cycle writes the batch id and the counter and raises the trigger
 * in one synchronous block (one PLC cycle), then lowers it. Every trigger event's snapshot, and
 * its context, must hold that cycle's values, never the previous batch's; a snapshot tag that
 * cannot be read at the trigger is null with its reason, never the older polled value.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { Gateway } from "../../src/app/gateway.ts";
import { parseConfig } from "../../src/config/load.ts";
import type { CodecSpec } from "../../src/drivers/modbus/codec.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { assertValidEvents } from "../support/event-schema.ts";
import { eventually } from "../support/resources.ts";

const STRING: CodecSpec = { type: "string", byteOrder: "ABCD", length: 5 };
const UINT16: CodecSpec = { type: "uint16", byteOrder: "ABCD" };

let sim: ModbusSimulator;
let gateway: Gateway;
let dir: string;

interface Doc {
  type: string;
  data: {
    snapshot: Record<string, unknown>;
    snapshot_errors?: Record<string, string>;
    context?: Record<string, unknown>;
  };
}

function triggerEvents(): Doc[] {
  const records = gateway.journal.query({ type: "batch.completed" });
  assertValidEvents(records.map((r) => r.payload));
  return records.map((r) => JSON.parse(r.payload) as Doc);
}

/** Waits until the device read the trigger coil after now (so it saw the value just set). */
async function coilReadAgain(): Promise<void> {
  sim.clearRequests();
  await eventually(
    () => sim.requests.some((r) => r.functionCode === 1 && r.address <= 5),
    5000,
    "a poll of the trigger coil",
  );
}

beforeAll(async () => {
  sim = await startModbusSimulator({ port: 0 });
  sim.setValue(1, "HR200", "B-000", STRING);
  sim.setValue(1, "HR100", 0, UINT16);
  sim.setBit(1, "C5", false);
  dir = mkdtempSync(join(tmpdir(), "plc2mqtt-snapshot-modbus-"));
  const text = `version: 1
gateway: { id: snap-gw, data_dir: ${join(dir, "data")} }
journal: { commit_interval: 10ms }
http: { listen: false }
devices:
  - id: press-1
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    request_timeout: 500ms
    context: [batch_id]
    tags:
      - { name: done, address: C5, type: bool, poll_interval: 50ms,
          trigger: { on: rising, event: batch.completed, snapshot: [batch_id, good_count] } }
      - { name: batch_id, address: HR200, type: string, length: 5, poll_interval: 2s }
      - { name: good_count, address: HR100, type: uint16, poll_interval: 2s }
`;
  const { config } = parseConfig(text, { file: join(dir, "gateway.yaml"), env: {}, baseDir: dir });
  gateway = await Gateway.start({ config, log: silentLogger(), version: "0.0.0-test" });
  // the slow group's first poll is in and the coil was seen low: edges can fire from now on
  await eventually(
    () => gateway.journal.query({ subject: "good_count" }).length > 0,
    10_000,
    "the first poll of the slow group",
  );
  await coilReadAgain();
});

afterAll(async () => {
  await gateway?.stop();
  await sim?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("Modbus: a trigger's snapshot is read at the trigger", () => {
  it("holds the values written in the trigger's cycle, with unequal poll intervals", async () => {
    const cycles = 5;
    for (let i = 1; i <= cycles; i++) {
      // one PLC cycle: the batch's values and the trigger, in one synchronous block
      sim.setValue(1, "HR200", `B-00${i}`, STRING);
      sim.setValue(1, "HR100", 100 * i, UINT16);
      sim.setBit(1, "C5", true);
      await eventually(() => triggerEvents().length === i, 10_000, `trigger event ${i}`);
      sim.setBit(1, "C5", false);
      await coilReadAgain();
    }
    const events = triggerEvents();
    expect(events.map((e) => e.data.snapshot)).toEqual(
      Array.from({ length: cycles }, (_, k) => ({
        batch_id: `B-00${k + 1}`,
        good_count: 100 * (k + 1),
      })),
    );
    expect(events.map((e) => e.data.context)).toEqual(
      Array.from({ length: cycles }, (_, k) => ({ batch_id: `B-00${k + 1}` })),
    );
    expect(events.every((e) => e.data.snapshot_errors === undefined)).toBe(true);
  });

  it("a snapshot tag that cannot be read at the trigger is null with the reason", async () => {
    const before = triggerEvents().length;
    sim.faults.exception(2, { unitId: 1, functionCode: 3, address: 100 });
    try {
      sim.setValue(1, "HR100", 999, UINT16);
      sim.setValue(1, "HR200", "B-999", STRING);
      sim.setBit(1, "C5", true);
      await eventually(() => triggerEvents().length === before + 1, 10_000, "the trigger event");
    } finally {
      sim.faults.clear();
      sim.setBit(1, "C5", false);
    }
    const last = triggerEvents().at(-1)!;
    expect(last.data.snapshot).toEqual({ batch_id: "B-999", good_count: null });
    expect(Object.keys(last.data.snapshot_errors ?? {})).toEqual(["good_count"]);
    expect(last.data.snapshot_errors?.good_count).toMatch(/exception 2|illegal data address/i);
  });
});
