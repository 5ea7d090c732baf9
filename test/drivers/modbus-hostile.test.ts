/**
 * Hostile and failing devices: every malformed response kind, exceptions, a dead unit on a
 * shared connection. The driver must turn each into bad samples with a reason for exactly the
 * tags of the request concerned, never throw, and read good values again once the device
 * behaves.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type MalformedKind,
  type ModbusSimulator,
  startModbusSimulator,
} from "../../simulators/modbus/index.ts";
import { DriverRunner } from "../../src/app/driver-runner.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { Driver, TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";

const log = silentLogger();
const ctx = () => ({ signal: new AbortController().signal, log });

// one 10-register request per unit (HR0..HR9, max_gap 8); the faults target unit 2
const TAGS = [
  { name: "u1_a", address: "HR0", type: "uint16" },
  { name: "u1_b", address: "HR8", type: "float32" },
  { name: "u2_a", address: "HR0", type: "uint16", unit_id: 2 },
  { name: "u2_b", address: "HR8", type: "float32", unit_id: 2 },
];

const KINDS: { kind: MalformedKind; reason: RegExp }[] = [
  { kind: "short-frame", reason: /unit 2 .*failed: .*(length|expected)/i },
  {
    kind: "wrong-transaction-id",
    reason: /unit 2 .*failed: the device answered with id \d+ to request \d+: it does not echo/,
  },
  { kind: "byte-count-mismatch", reason: /unit 2 .*failed: .*(length|expected)/i },
  { kind: "oversized", reason: /unit 2 .*failed: .*(length|expected)/i },
  { kind: "stall-mid-frame", reason: /unit 2 .*failed: no response within/ },
  { kind: "garbage", reason: /unit 2 .*failed: / },
];

function byTag(samples: readonly TagSample[]) {
  return Object.fromEntries(samples.map((s) => [s.tag, s]));
}

describe("Modbus driver against a hostile device", () => {
  let sim: ModbusSimulator;
  let driver: Driver;

  beforeAll(async () => {
    sim = await startModbusSimulator({ port: 0 });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    sim.faults.clear();
    await driver?.close();
    const device = deviceSchema.parse({
      id: "hostile",
      protocol: "modbus-tcp",
      host: "127.0.0.1",
      port: sim.port,
      request_timeout: "300ms",
      max_gap: 8,
      tags: TAGS,
    });
    driver = createDriver(device);
    await driver.connect(ctx());
    for (const unit of [1, 2]) sim.setRegisters(unit, "HR0", [unit * 100]);
  });

  for (const { kind, reason } of KINDS) {
    it(`turns a ${kind} response into bad samples for that request only, then recovers`, async () => {
      const connections = sim.connections;
      sim.faults.malformed(kind, { unitId: 2 });
      const samples = byTag(await driver.read!(ctx()));
      expect(samples.u1_a).toMatchObject({ quality: "good", value: 100 });
      expect(samples.u1_b!.quality).toBe("good");
      for (const tag of ["u2_a", "u2_b"]) {
        expect(samples[tag]).toMatchObject({ quality: "bad", value: null });
        expect(samples[tag]!.reason).toMatch(reason);
      }
      const requested = sim.requests.filter((r) => r.unitId === 2).at(-1);
      expect(requested).toMatchObject({ functionCode: 3, address: 0, quantity: 10 });
      // a frame cut off mid-way leaves the stream out of step: the link starts afresh on a
      // fresh connection at once, without the runner (issue 13.8)
      if (kind === "stall-mid-frame") {
        await eventually(() => sim.connections === connections + 1, 5000, "a fresh connection");
      }
      expect(driver.connected).toBe(true);
      sim.faults.clear();
      const after = byTag(await driver.read!(ctx()));
      expect(after.u2_a).toMatchObject({ quality: "good", value: 200 });
      expect(after.u1_a).toMatchObject({ quality: "good", value: 100 });
    });
  }

  it("names the exception code and keeps the connection for an exception response", async () => {
    sim.faults.exception(2, { unitId: 2 });
    const samples = byTag(await driver.read!(ctx()));
    expect(samples.u2_a!.reason).toMatch(/exception 2 \(illegal data address\)/);
    expect(samples.u1_a!.quality).toBe("good");
    expect(driver.connected).toBe(true);
    sim.faults.exception(4, { unitId: 1 });
    expect(byTag(await driver.read!(ctx())).u1_a!.reason).toMatch(
      /exception 4 \(server device failure\)/,
    );
  });

  it("stops asking a dead unit on every poll while the others keep reading good", async () => {
    sim.faults.silence({ unitId: 2 });
    sim.clearRequests();
    for (let i = 0; i < 6; i++) {
      const samples = byTag(await driver.read!(ctx()));
      expect(samples.u1_a!.quality).toBe("good");
      expect(samples.u2_a!.quality).toBe("bad");
    }
    const toDead = sim.requests.filter((r) => r.unitId === 2).length;
    // the first poll's request and its one retry (the same silence), the next poll's timeout
    // (the second in a row), then skipped until its retry time
    expect(toDead).toBe(3);
    expect(sim.requests.filter((r) => r.unitId === 1)).toHaveLength(6);
  });

  it("keeps the runner polling through every kind of hostile response", async () => {
    const seen: TagSample[] = [];
    const runner = new DriverRunner({
      driver: createDriver(
        deviceSchema.parse({
          id: "hostile-run",
          protocol: "modbus-tcp",
          host: "127.0.0.1",
          port: sim.port,
          poll_interval: "50ms",
          request_timeout: "200ms",
          max_gap: 8,
          tags: TAGS,
        }),
      ),
      log,
      onSamples: (s) => seen.push(...s),
      reconnect: { minMs: 10, maxMs: 100 },
    });
    runner.start();
    for (const { kind } of KINDS) {
      sim.faults.clear();
      sim.faults.malformed(kind, { unitId: 2 });
      const from = seen.length;
      await eventually(
        () => seen.slice(from).some((s) => s.tag === "u2_a" && s.quality === "bad"),
        5000,
        `bad after ${kind}`,
      );
    }
    sim.faults.clear();
    const from = seen.length;
    await eventually(
      () => seen.slice(from).some((s) => s.tag === "u2_a" && s.quality === "good"),
      10_000,
      "recovery",
    );
    await runner.stop();
  });
});
