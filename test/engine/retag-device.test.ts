/**
 * Issue 13.3, the engine's part: a reload that changes a device's tag map on the live
 * connection keeps the state of the tags that did not change (no new initial telemetry, state
 * durations go on), starts new and changed tags afresh and forgets removed ones.
 */
import { describe, expect, it } from "vitest";
import { createEngine, type EngineDevice, type EngineTag } from "../../src/engine/index.ts";
import type { TagSample } from "../../src/events/sample.ts";

const mode: EngineTag = { name: "mode", valueType: "integer", states: { "1": "run", "2": "stop" } };
const speed: EngineTag = { name: "speed", valueType: "float", deadband: { absolute: 1 } };
const old: EngineTag = { name: "old", valueType: "integer" };
const press = (tags: EngineTag[]): EngineDevice => ({
  id: "press-1",
  asset: { site: "s" },
  context: [],
  staleAfterMs: 10_000,
  tags,
});

const good = (tag: string, value: TagSample["value"], at: number): TagSample => ({
  device: "press-1",
  tag,
  value,
  quality: "good",
  readTime: at,
});

const summary = (events: ReturnType<ReturnType<typeof createEngine>["apply"]>) =>
  events.map((e) => [e.subject, e.type.replace("plc2mqtt.", ""), e.data.reason ?? e.data.state]);

describe("engine retagDevice", () => {
  it("point 3: keeps unchanged tags' state, starts new and changed ones, forgets removed ones", () => {
    const engine = createEngine([press([mode, speed, old])]);
    engine.apply([good("mode", 1, 1000), good("speed", 10, 1000), good("old", 5, 1000)], 1000);

    // the reload: `temp` is added, `old` removed, `speed` gets another deadband
    const temp: EngineTag = { name: "temp", valueType: "float" };
    const speed2: EngineTag = { ...speed, deadband: { absolute: 5 } };
    engine.retagDevice(press([mode, speed2, temp]), new Set(), 2000);

    const after = engine.apply(
      [
        good("mode", 1, 3000),
        good("speed", 10, 3000),
        good("temp", 20, 3000),
        good("old", 6, 3000),
      ],
      3000,
    );
    // mode kept its state: no state.changed for the same state; speed and temp are new
    expect(summary(after)).toEqual([
      ["speed", "telemetry", "initial"],
      ["temp", "telemetry", "initial"],
    ]);
    expect(engine.stats().ignoredSamples).toBe(1); // `old` is forgotten
    // the state's duration counts from before the reload
    const stop = engine.apply([good("mode", 2, 5000)], 5000);
    expect(stop.map((e) => e.data)).toEqual([
      { state: "stop", previous_state: "run", raw: 2, previous_duration_ms: 4000 },
    ]);
  });

  it("point 3: a tag named in restart starts afresh even with the same rules", () => {
    // e.g. its address changed: the engine's rules are the same, the value is another one
    const engine = createEngine([press([mode, speed])]);
    engine.apply([good("mode", 1, 1000), good("speed", 10, 1000)], 1000);
    engine.retagDevice(press([mode, speed]), new Set(["mode"]), 2000);
    const after = engine.apply([good("mode", 1, 3000), good("speed", 10, 3000)], 3000);
    expect(summary(after)).toEqual([["mode", "state.changed", "run"]]);
    expect(after[0]!.data.previous_state).toBeNull();
  });

  it("point 3: staleness of a kept tag goes on; a new tag's counts from the reload", () => {
    const engine = createEngine([press([speed])]);
    engine.tick(0);
    engine.apply([good("speed", 10, 1000)], 1000);
    engine.retagDevice(press([speed, { name: "temp", valueType: "float" }]), new Set(), 5000);
    expect(engine.nextDue()).toBe(11_000); // speed: 10 s after its last read, not after the reload
    const stale = engine.tick(11_000);
    expect(stale.map((e) => [e.subject, e.data.quality])).toEqual([["speed", "stale"]]);
    expect(engine.nextDue()).toBe(15_000); // temp, never read: 10 s after the reload
  });
});
