/**
 * Issue 11, point 9, through the real path (Gateway.start: DriverRunner, OPC UA driver,
 * engine, journal) against the bundled simulator: while a variable's status is
 * UncertainLastUsableValue, every value it takes is published as telemetry with quality
 * `uncertain` and the status name in quality_reason, on a subscribed tag and on a polled one;
 * one quality.changed says uncertain (reason: the status name), one says good again, and the
 * first good value is published as good. Every event is validated against the events schema.
 *
 * The simulator's set() writes status Good; a value that arrives with an Uncertain status is
 * made by changing value and status while notifications are stalled (one PLC cycle: the
 * server's node takes both at once, as a PLC that flags its value as uncertain does).
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

const DEVICE = "stand-1";
const TAGS = ["depth", "depth_polled"] as const;
const UNCERTAIN = "UncertainLastUsableValue";

let fixture: OpcuaFixture;
let gateway: Gateway;

interface Doc {
  type: string;
  subject: string;
  data: Record<string, unknown>;
}

function events(subject: string, type?: string): Doc[] {
  const records = gateway.journal.query({ device: DEVICE, subject, ...(type ? { type } : {}) });
  assertValidEvents(records.map((r) => r.payload));
  return records.map((r) => JSON.parse(r.payload) as Doc);
}

const telemetry = (tag: string) => events(tag, "plc2mqtt.telemetry").map((e) => e.data);
const qualities = (tag: string) => events(tag, "plc2mqtt.quality.changed").map((e) => e.data);

/** Waits until every tag published `value` with `quality`. */
async function published(value: number, quality: string): Promise<void> {
  await eventually(
    () => TAGS.every((t) => telemetry(t).some((d) => d.value === value && d.quality === quality)),
    10_000,
    `${value} published as ${quality} on ${TAGS.join(" and ")}`,
  );
}

beforeAll(async () => {
  fixture = await startOpcuaFixture();
  fixture.sim.set("Measurement1", 20);
  const text = `version: 1
gateway: { id: uncertain-gw, data_dir: ${fixture.dataDir} }
journal: { commit_interval: 10ms }
http: { listen: false }
devices:
  - id: ${DEVICE}
    protocol: opcua
    endpoint: ${fixture.sim.endpointUrl}
    publishing_interval: 50ms
    sampling_interval: 0ms
    request_timeout: 2s
    tags:
      - { name: depth, node: "${NSU}Measurement1", type: double }
      - { name: depth_polled, node: "${NSU}Measurement1", type: double, mode: poll,
          poll_interval: 100ms }
`;
  const dir = fixture.dir;
  const { config } = parseConfig(text, { file: join(dir, "gateway.yaml"), env: {}, baseDir: dir });
  gateway = await Gateway.start({ config, log: silentLogger(), version: "0.0.0-test" });
  await published(20, "good");
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await fixture?.close();
});

describe("OPC UA: values with an Uncertain status", () => {
  it("are published as uncertain with the status name, and the first good value as good", async () => {
    fixture.sim.setStatus("Measurement1", UNCERTAIN);
    await published(20, "uncertain");
    const written = Array.from({ length: 10 }, (_, i) => 21 + i);
    for (const value of written) {
      fixture.sim.stallNotifications(true);
      fixture.sim.set("Measurement1", value);
      fixture.sim.setStatus("Measurement1", UNCERTAIN);
      fixture.sim.stallNotifications(false);
      await published(value, "uncertain");
    }
    fixture.sim.set("Measurement1", 40); // status Good
    await published(40, "good");

    for (const tag of TAGS) {
      expect(
        telemetry(tag).map((d) => [d.value, d.quality, d.quality_reason]),
        tag,
      ).toEqual([
        [20, "good", undefined],
        [20, "uncertain", UNCERTAIN],
        ...written.map((v) => [v, "uncertain", UNCERTAIN]),
        [40, "good", undefined],
      ]);
      expect(
        qualities(tag).map((d) => [d.previous_quality, d.quality, d.reason]),
        tag,
      ).toEqual([
        ["good", "uncertain", UNCERTAIN],
        ["uncertain", "good", null],
      ]);
    }
  }, 60_000);
});
