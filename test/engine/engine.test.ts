/**
 * Direct tests of the engine's API beyond the fixtures: several devices in one call, ignored
 * samples in stats(), nextDue() before the time is known, and the config mapping.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createEngine, type EngineDevice, engineDeviceFromConfig } from "../../src/engine/index.ts";
import { cloudEventId, toCloudEvent } from "../../src/events/cloudevent.ts";
import type { TagSample } from "../../src/events/sample.ts";
import { assertValidEvents } from "../support/event-schema.ts";

const sample = (device: string, tag: string, value: TagSample["value"], at: number): TagSample => ({
  device,
  tag,
  value,
  quality: "good",
  readTime: at,
});

const press: EngineDevice = {
  id: "press-1",
  asset: { site: "berlin", line: "l1" },
  context: ["batch_id"],
  tags: [
    { name: "batch_id", valueType: "string" },
    { name: "temperature", valueType: "float", staleAfterMs: 5000 },
  ],
};
const oven: EngineDevice = {
  id: "oven-1",
  asset: { site: "hamburg" },
  context: [],
  tags: [{ name: "temperature", valueType: "float", heartbeatMs: 1000 }],
};

const GW = { gatewayId: "edge-1" };

describe("engine", () => {
  it("keeps devices apart in one call: asset, context and poll per device", () => {
    const engine = createEngine([press, oven]);
    const events = engine.apply(
      [
        sample("oven-1", "temperature", 180, 10),
        sample("press-1", "temperature", 20, 10),
        sample("press-1", "batch_id", "B7", 10),
      ],
      10,
    );
    expect(events.map((e) => [e.device, e.subject, e.asset, e.context])).toEqual([
      ["oven-1", "temperature", { site: "hamburg" }, undefined],
      ["press-1", "temperature", { site: "berlin", line: "l1" }, { batch_id: "B7" }],
      ["press-1", "batch_id", { site: "berlin", line: "l1" }, { batch_id: "B7" }],
    ]);
    expect("context" in events[0]!).toBe(false);
  });

  it("ignores and counts samples of unknown devices and tags", () => {
    const engine = createEngine([press]);
    const events = engine.apply(
      [sample("nope", "temperature", 1, 0), sample("press-1", "nope", 1, 0)],
      0,
    );
    expect(events).toEqual([]);
    expect(engine.stats()).toEqual({ ignoredSamples: 2 });
  });

  it("schedules nothing before it knows the time, then the earliest due rule", () => {
    const engine = createEngine([press, oven]);
    expect(engine.nextDue()).toBeUndefined();
    expect(engine.tick(100)).toEqual([]);
    expect(engine.nextDue()).toBe(5100); // press temperature never read: stale 5s after 100
    engine.apply([sample("oven-1", "temperature", 180, 200)], 200);
    expect(engine.nextDue()).toBe(1200); // oven heartbeat
    expect(createEngine([{ ...oven, tags: [{ name: "t", valueType: "float" }] }]).nextDue()).toBe(
      undefined,
    );
  });

  it("hands out events whose asset cannot be changed, one frozen copy per device", () => {
    const engine = createEngine([oven]);
    const [event] = engine.apply([sample("oven-1", "temperature", 1, 0)], 0);
    expect(() => {
      event!.asset.site = "elsewhere";
    }).toThrow(TypeError);
    const [next] = engine.apply([sample("oven-1", "temperature", 2, 1)], 1);
    expect(next!.asset).toEqual({ site: "hamburg" });
    // the same object for every event of the device: what the renderer and topic cache key on
    expect(next!.asset).toBe(event!.asset);
    expect(oven.asset).not.toBe(event!.asset);
  });

  it("flushes nothing when nothing is held", () => {
    const engine = createEngine([press, oven]);
    engine.apply([sample("oven-1", "temperature", 1, 0)], 0);
    expect(engine.flush(10)).toEqual([]);
  });
});

describe("engineDeviceFromConfig", () => {
  const config = deviceSchema.parse({
    id: "press-1",
    protocol: "modbus-tcp",
    host: "10.0.0.5",
    area: "stamping",
    stale_after: "30s",
    context: ["batch_id"],
    tags: [
      { name: "run", address: "C5" },
      { name: "bit", address: "HR7.3" },
      { name: "count", address: "HR100" },
      { name: "scaled", address: "HR101", type: "int16", scale: 0.1 },
      { name: "offset", address: "HR102", type: "int16", scale: 10, offset: 5 },
      { name: "temp", address: "IR10", type: "float32", unit: "degC", heartbeat: "1m" },
      { name: "batch_id", address: "HR200", type: "string", length: 5, stale_after: "2s" },
      {
        name: "state",
        address: "HR300",
        states: { 0: "stopped" },
        min_interval: "250ms",
        deadband: { percent: 2 },
        range: { min: 0, max: 10 },
      },
    ],
  });

  it("maps value types from the configured type, durations in ms, stale_after defaulted", () => {
    const device = engineDeviceFromConfig(config, "berlin");
    expect(device.id).toBe("press-1");
    expect(device.asset).toEqual({ site: "berlin", area: "stamping" });
    expect(device.context).toEqual(["batch_id"]);
    expect(device.tags.map((t) => [t.name, t.valueType])).toEqual([
      ["run", "bool"],
      ["bit", "bool"],
      ["count", "integer"],
      ["scaled", "float"],
      ["offset", "integer"],
      ["temp", "float"],
      ["batch_id", "string"],
      ["state", "integer"],
    ]);
    const byName = Object.fromEntries(device.tags.map((t) => [t.name, t]));
    expect(byName.temp).toMatchObject({ unit: "degC", heartbeatMs: 60_000, staleAfterMs: 30_000 });
    expect(byName.batch_id?.staleAfterMs).toBe(2000);
    expect(byName.state).toMatchObject({
      states: { "0": "stopped" },
      minIntervalMs: 250,
      deadband: { percent: 2 },
      range: { min: 0, max: 10 },
    });
  });

  it("takes the device's site over the gateway's, and leaves out what is not given", () => {
    const own = { ...config, site: "hamburg", line: "l2" };
    expect(engineDeviceFromConfig(own, "berlin").asset).toEqual({
      site: "hamburg",
      area: "stamping",
      line: "l2",
    });
    expect(engineDeviceFromConfig({ ...config, area: undefined }).asset).toEqual({});
  });
});

describe("the shipped configs", () => {
  it.each(["example.yaml", "demo.yaml"])(
    "%s: every device maps and yields valid events",
    (file) => {
      const text = readFileSync(new URL(`../../config/${file}`, import.meta.url), "utf8");
      const root = parse(text) as { gateway: { site?: string }; devices: unknown[] };
      const devices = root.devices.map((d) =>
        engineDeviceFromConfig(deviceSchema.parse(d), root.gateway.site),
      );
      const engine = createEngine(devices);
      const VALUES = { bool: true, integer: 1, float: 1.5, string: "x", json: { a: 1 } } as const;
      const samples = devices.flatMap((d) =>
        d.tags.map((t) => sample(d.id, t.name, VALUES[t.valueType], 1000)),
      );
      const events = [...engine.apply(samples, 1000), ...engine.tick(10 * 86_400_000)];
      expect(events.length).toBeGreaterThan(0);
      expect(engine.stats().ignoredSamples).toBe(0);
      assertValidEvents(
        events.map((e, i) => toCloudEvent(e, BigInt(i), cloudEventId("t", BigInt(i)), GW)),
      );
    },
  );
});

describe("setDevices (live reload)", () => {
  it("keeps the state of kept devices, starts new ones afresh and forgets removed ones", () => {
    const device = (id: string) => ({
      id,
      asset: {},
      context: [],
      tags: [{ name: "t", valueType: "integer" as const }],
    });
    const engine = createEngine([device("a"), device("b")]);
    const sample = (d: string, value: number, at: number) => ({
      device: d,
      tag: "t",
      value,
      quality: "good" as const,
      readTime: at,
    });
    engine.apply([sample("a", 1, 1), sample("b", 1, 1)], 1);
    engine.setDevices([device("c")], new Set(["a"]), 2);
    const events = engine.apply([sample("a", 1, 2), sample("b", 1, 2), sample("c", 1, 2)], 2);
    // a: unchanged value, no event (state kept); b: forgotten (ignored); c: new, initial event
    expect(events.map((e) => `${e.device}:${e.data.reason}`)).toEqual(["c:initial"]);
    expect(engine.stats().ignoredSamples).toBe(1);
  });

  it("counts a reloaded device's staleness from the reload, not from the gateway's start", () => {
    const stale = {
      id: "late",
      asset: {},
      context: [],
      staleAfterMs: 10_000,
      tags: [{ name: "t", valueType: "integer" as const, staleAfterMs: 10_000 }],
    };
    const engine = createEngine([]);
    engine.tick(0); // the gateway started at 0
    engine.setDevices([stale], new Set(), 3_600_000); // added an hour later
    expect(engine.nextDue()).toBe(3_610_000);
    expect(engine.tick(3_600_001)).toEqual([]);
    expect(engine.tick(3_610_000).map((e) => e.data.quality)).toEqual(["stale"]);
  });
});
