/**
 * Issue 11.4: one publish response can span several publishing intervals, so it can carry a
 * context tag's change from after an event's own change. Against the bundled simulator with
 * MinSupportedSampleRate 0 (every change queued, each with its own source timestamp), values
 * set in one synchronous run reach the client in ONE publish response (the simulator suite
 * shows that through a raw client). The driver must hand them over as separate moments in
 * source-time order, and, through the real path (Gateway: DriverRunner, engine, journal), no
 * event's context may hold a value whose source time is later than the event's time.
 */
import "node-opcua";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Gateway } from "../../src/app/gateway.ts";
import { parseConfig } from "../../src/config/load.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { assertValidEvents } from "../support/event-schema.ts";
import { eventually } from "../support/resources.ts";
import { NSU, type OpcuaFixture, opcuaDevice, startOpcuaFixture } from "./opcua-fixture.ts";

let fixture: OpcuaFixture;

beforeAll(async () => {
  fixture = await startOpcuaFixture({ minSupportedSampleRate: 0 });
});
afterAll(async () => {
  await fixture?.close();
});

const TAGS = [
  { name: "result", node: `${NSU}Result`, type: "int32", queue_size: 10 },
  { name: "batch", node: `${NSU}BatchId`, type: "string", queue_size: 10 },
];

/**
 * One PLC story in one synchronous run (so one publish response): the result changes, then
 * the batch, then the result again, each with its own source time. Returns the times.
 */
function story(round: number): { t1: number; t2: number; t3: number } {
  const t0 = Date.now();
  const [t1, t2, t3] = [t0 + 10, t0 + 20, t0 + 30];
  fixture.sim.set("Result", 10 * round + 1, { sourceTimestamp: new Date(t1) });
  fixture.sim.set("BatchId", `B${round}`, { sourceTimestamp: new Date(t2) });
  fixture.sim.set("Result", 10 * round + 2, { sourceTimestamp: new Date(t3) });
  return { t1, t2, t3 };
}

describe("OPC UA: the notifications of one publish response", () => {
  it("are delivered as separate moments in source-time order", async () => {
    fixture.sim.setMany({ Result: 0, BatchId: "B0" });
    const device = opcuaDevice(fixture.sim.endpointUrl, {
      publishing_interval: "200ms",
      tags: TAGS,
    });
    const driver = createDriver(device, { dataDir: fixture.dataDir });
    const ctx = { signal: new AbortController().signal, log: silentLogger() };
    const calls: TagSample[][] = [];
    try {
      await driver.connect(ctx);
      await driver.subscribe!(ctx, (samples) => calls.push(samples));
      await eventually(() => calls.flat().length >= 2, 10_000, "the first values");
      const mark = calls.length;
      const { t1, t2, t3 } = story(1);
      await eventually(
        () =>
          calls
            .slice(mark)
            .flat()
            .some((s) => s.tag === "result" && s.value === 12),
        10_000,
        "the story",
      );
      const moments = calls.slice(mark);
      expect(moments.map((m) => m.map((s) => [s.tag, s.value, s.sourceTime]))).toEqual([
        [["result", 11, t1]],
        [["batch", "B1", t2]],
        [["result", 12, t3]],
      ]);
    } finally {
      await driver.close();
    }
  }, 30_000);
});

describe("OPC UA: a context never comes from after its event", () => {
  let gateway: Gateway | undefined;
  afterAll(async () => {
    await gateway?.stop();
  });

  it("holds, per event, only values whose source time is not later than the event's", async () => {
    fixture.sim.setMany({ Result: 0, BatchId: "B0" });
    const text = `version: 1
gateway: { id: order-gw, data_dir: ${fixture.dataDir} }
journal: { commit_interval: 10ms }
http: { listen: false }
devices:
  - id: stand
    protocol: opcua
    endpoint: ${fixture.sim.endpointUrl}
    publishing_interval: 300ms
    sampling_interval: 0ms
    request_timeout: 2s
    context: [batch]
    tags:
      - { name: result, node: "${NSU}Result", type: int32, queue_size: 10,
          states: { 0: none, 11: pass-1, 12: fail-1, 21: pass-2, 22: fail-2, 31: pass-3, 32: fail-3 } }
      - { name: batch, node: "${NSU}BatchId", type: string, queue_size: 10 }
`;
    const dir = fixture.dir;
    const { config } = parseConfig(text, { file: join(dir, "gw.yaml"), env: {}, baseDir: dir });
    gateway = await Gateway.start({ config, log: silentLogger(), version: "0.0.0-test" });
    const journal = gateway.journal;
    const states = () => journal.query({ device: "stand", type: "plc2mqtt.state.changed" });
    await eventually(() => states().length >= 1, 30_000, "the initial state");

    // when each batch value became true at the source
    const batchSince = new Map<string, number>([["B0", 0]]);
    const rounds = 3;
    for (let round = 1; round <= rounds; round++) {
      const before = states().length;
      const { t2 } = story(round);
      batchSince.set(`B${round}`, t2);
      await eventually(() => states().length === before + 2, 10_000, `round ${round}`);
    }

    const records = journal.query({ device: "stand" });
    assertValidEvents(records.map((r) => r.payload));
    const docs = records.map(
      (r) =>
        JSON.parse(r.payload) as {
          type: string;
          time: string;
          data: { state?: string; context?: { batch?: string | null } };
        },
    );
    const withContext = docs.filter((d) => d.data.context?.batch != null);
    expect(withContext.length).toBeGreaterThanOrEqual(3 * rounds);
    for (const doc of withContext) {
      const since = batchSince.get(doc.data.context!.batch!);
      expect(since, JSON.stringify(doc)).toBeDefined();
      expect(since!, JSON.stringify(doc)).toBeLessThanOrEqual(Date.parse(doc.time));
    }
    // and concretely: the first result of each round is reported with the batch before it
    const changes = docs
      .filter((d) => d.type === "plc2mqtt.state.changed")
      .map((d) => [d.data.state, d.data.context?.batch]);
    expect(changes.slice(-2 * rounds)).toEqual(
      Array.from({ length: rounds }, (_, k) => [
        [`pass-${k + 1}`, `B${k}`],
        [`fail-${k + 1}`, `B${k + 1}`],
      ]).flat(),
    );
  }, 60_000);
});
