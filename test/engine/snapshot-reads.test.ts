/**
 * Snapshots are read at the trigger (issue 8.3): engine.snapshotReads(samples) predicts, without
 * changing state, which triggers the samples would fire and which tags their snapshots and the
 * device's context need; apply takes the reads (marked snapshotRead) for the snapshot only.
 * The table case trigger-snapshot-read-at-the-trigger covers the apply side with a config.
 */
import { describe, expect, it } from "vitest";
import { createEngine, type EngineDevice } from "../../src/engine/index.ts";
import { cloudEventId, toCloudEvent } from "../../src/events/cloudevent.ts";
import type { TagSample } from "../../src/events/sample.ts";
import type { GatewayEvent } from "../../src/events/types.ts";
import { assertValidEvents } from "../support/event-schema.ts";

const press: EngineDevice = {
  id: "press-1",
  asset: { site: "berlin" },
  context: ["order"],
  tags: [
    {
      name: "done",
      valueType: "bool",
      trigger: { on: "rising", event: "batch.completed", snapshot: ["batch_id", "count"] },
    },
    {
      name: "result",
      valueType: "integer",
      trigger: { on: "value", value: 2, event: "quality.failed", snapshot: ["count"] },
    },
    { name: "batch_id", valueType: "string" },
    { name: "count", valueType: "integer" },
    { name: "order", valueType: "integer" },
  ],
};
const oven: EngineDevice = {
  id: "oven-1",
  asset: {},
  context: [],
  tags: [
    {
      name: "ready",
      valueType: "bool",
      trigger: { on: "rising", event: "oven.ready", snapshot: ["temp"] },
    },
    { name: "temp", valueType: "float" },
  ],
};

const good = (tag: string, value: TagSample["value"], device = "press-1"): TagSample => ({
  device,
  tag,
  value,
  quality: "good",
  readTime: 1,
});
const read = (tag: string, value: TagSample["value"], device = "press-1"): TagSample => ({
  ...good(tag, value, device),
  snapshotRead: true,
});

function valid(events: GatewayEvent[]): GatewayEvent[] {
  assertValidEvents(
    events.map((e, i) => {
      const seq = BigInt(i + 1);
      return toCloudEvent(e, seq, cloudEventId("t", seq), { gatewayId: "edge-1" });
    }),
  );
  return events;
}

function started() {
  const engine = createEngine([press, oven]);
  engine.apply(
    [
      good("done", false),
      good("result", 0),
      good("batch_id", "B1"),
      good("count", 1),
      good("order", 7),
      good("ready", false, "oven-1"),
      good("temp", 20, "oven-1"),
    ],
    0,
  );
  return engine;
}

describe("snapshotReads", () => {
  it("names nothing when no trigger would fire, and nothing on first sight", () => {
    expect(createEngine([press]).snapshotReads([good("done", true)])).toEqual([]);
    const engine = started();
    expect(engine.snapshotReads([good("done", false), good("count", 5)])).toEqual([]);
    expect(engine.snapshotReads([good("nope", true), good("done", false, "nope")])).toEqual([]);
  });

  it("names the snapshot and context tags of every trigger that would fire, per device", () => {
    const engine = started();
    expect(
      engine.snapshotReads([good("ready", true, "oven-1"), good("result", 2), good("done", true)]),
    ).toEqual([
      { device: "oven-1", tags: ["temp"] },
      { device: "press-1", tags: ["count", "order", "batch_id"] },
    ]);
  });

  it("follows the order within the batch, as apply does", () => {
    const engine = started();
    engine.apply([good("done", true)], 1);
    // true -> false -> true within one delivery fires once, on the last sample
    expect(engine.snapshotReads([good("done", false), good("done", true)])).toEqual([
      { device: "press-1", tags: ["batch_id", "count", "order"] },
    ]);
    // a bad or NaN sample in between does not move the previous good value
    const bad: TagSample = { ...good("done", null), quality: "bad", reason: "timeout" };
    expect(engine.snapshotReads([bad, good("done", true)])).toEqual([]);
    expect(engine.snapshotReads([good("done", false), bad, good("done", true)])).toHaveLength(1);
    expect(engine.snapshotReads([good("result", Number.NaN), good("result", 2)])).toHaveLength(1);
    // snapshot reads themselves are not trigger samples
    expect(engine.snapshotReads([read("done", false), read("done", true)])).toEqual([]);
  });

  it("changes no state: apply afterwards fires exactly as predicted", () => {
    const engine = started();
    const samples = [good("done", true)];
    engine.snapshotReads(samples);
    engine.snapshotReads(samples);
    expect(engine.snapshotReads(samples)).toHaveLength(1);
    const events = valid(engine.apply([...samples, read("batch_id", "B2"), read("count", 9)], 2));
    expect(events.map((e) => e.type)).toEqual(["batch.completed"]);
  });
});

describe("snapshot reads in apply", () => {
  it("fills the snapshot and the trigger event's context from the reads, not the older values", () => {
    const engine = started();
    const events = valid(
      engine.apply(
        [good("done", true), read("batch_id", "B2"), read("count", 9), read("order", 8)],
        2,
      ),
    );
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toEqual({
      trigger: "done",
      value: true,
      snapshot: { batch_id: "B2", count: 9 },
    });
    expect(events[0]!.context).toEqual({ order: 8 });
  });

  it("leaves the tags' own state alone: no telemetry from reads, the later poll still reports", () => {
    const engine = started();
    engine.apply([good("done", true), read("batch_id", "B2"), read("count", 9)], 2);
    const later = valid(engine.apply([good("count", 9), good("order", 8)], 3));
    expect(later.map((e) => [e.subject, e.data.previous, e.data.value])).toEqual([
      ["count", 1, 9],
      ["order", 7, 8],
    ]);
    // other events of a call with reads keep the latest polled context
    const mixed = valid(
      engine.apply([good("count", 10), good("result", 2), read("count", 11), read("order", 9)], 4),
    );
    expect(mixed.map((e) => [e.subject, e.context])).toEqual([
      ["count", { order: 8 }],
      ["result", { order: 9 }],
    ]);
    expect(mixed[1]!.data.snapshot).toEqual({ count: 11 });
  });

  it("a read that failed is null with its reason, never the older known value", () => {
    const engine = started();
    const timeout: TagSample = {
      ...read("batch_id", null),
      quality: "bad",
      reason: "read holding 200+3 on unit 1 timed out",
    };
    const uncertain: TagSample = { ...read("count", 9), quality: "uncertain" };
    const events = valid(engine.apply([good("done", true), timeout, uncertain], 2));
    expect(events[0]!.data).toEqual({
      trigger: "done",
      value: true,
      snapshot: { batch_id: null, count: null },
      snapshot_errors: {
        batch_id: "read holding 200+3 on unit 1 timed out",
        count: "quality uncertain",
      },
    });
    // a context tag the reads miss is null too, never the older known value
    expect(events[0]!.context).toEqual({ order: null });
  });

  it("a snapshot tag missing from the reads is null, 'not read at the trigger'", () => {
    const engine = started();
    const [event] = valid(engine.apply([good("done", true), read("count", 3)], 2));
    expect(event!.data.snapshot).toEqual({ batch_id: null, count: 3 });
    expect(event!.data.snapshot_errors).toEqual({ batch_id: "not read at the trigger" });
  });
});
