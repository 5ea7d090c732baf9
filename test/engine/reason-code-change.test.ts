/**
 * Issue 13.4: a tag that stays bad (or uncertain) for a new reason is worth a quality.changed
 * when the reason's code changes: after a namespace renumbering an OPC UA tag went from "not
 * connected: connection lost" to BadNodeIdUnknown and nobody was told. The same code with
 * other wording is not news.
 */
import { describe, expect, it } from "vitest";
import { createEngine, type EngineDevice } from "../../src/engine/index.ts";
import { cloudEventId, toCloudEvent } from "../../src/events/cloudevent.ts";
import type { TagSample } from "../../src/events/sample.ts";
import { assertValidEvents } from "../support/event-schema.ts";

const device: EngineDevice = {
  id: "line-ua",
  asset: { site: "s" },
  context: [],
  tags: [{ name: "speed", valueType: "float" }],
};

function bad(at: number, reason: string, reasonCode?: string): TagSample {
  return {
    device: "line-ua",
    tag: "speed",
    value: null,
    quality: "bad",
    reason,
    ...(reasonCode === undefined ? {} : { reasonCode }),
    readTime: at,
  };
}

describe("quality events and reason codes", () => {
  it("point 4: a new reason code with the same quality is an event; new wording alone is not", () => {
    const engine = createEngine([device]);
    const at = (t: number, s: TagSample) => engine.apply([s], t);
    const good: TagSample = {
      device: "line-ua",
      tag: "speed",
      value: 5,
      quality: "good",
      readTime: 0,
    };
    expect(at(0, good).map((e) => e.type)).toEqual(["plc2mqtt.telemetry"]);

    const lost = at(100, bad(100, "not connected: connection lost"));
    expect(lost.map((e) => e.data)).toMatchObject([
      { quality: "bad", previous_quality: "good", reason_code: null },
    ]);
    // the device is back, the node id is not: same quality, a code where there was none
    const unknown = at(200, bad(200, "read ns=2;s=Speed: BadNodeIdUnknown", "BadNodeIdUnknown"));
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatchObject({
      type: "plc2mqtt.quality.changed",
      subject: "speed",
      time: 200,
      data: {
        quality: "bad",
        previous_quality: "bad",
        reason: "read ns=2;s=Speed: BadNodeIdUnknown",
        reason_code: "BadNodeIdUnknown",
        last_good_value: 5,
      },
    });
    // the same code again, other wording: nothing new
    expect(
      at(300, bad(300, "read ns=2;s=Speed failed: BadNodeIdUnknown", "BadNodeIdUnknown")),
    ).toEqual([]);
    // another code: news again
    const denied = at(400, bad(400, "read: BadUserAccessDenied", "BadUserAccessDenied"));
    expect(denied.map((e) => e.data.reason_code)).toEqual(["BadUserAccessDenied"]);
    // a sample without a code says nothing new; the tag keeps its last code
    expect(at(500, bad(500, "not connected: connection lost"))).toEqual([]);
    expect(at(600, bad(600, "read: BadUserAccessDenied", "BadUserAccessDenied"))).toEqual([]);
    // back to good and bad again: the code counts afresh
    expect(at(700, { ...good, readTime: 700 }).map((e) => e.data.quality)).toEqual(["good"]);
    const again = at(800, bad(800, "read: BadUserAccessDenied", "BadUserAccessDenied"));
    expect(again.map((e) => [e.data.previous_quality, e.data.reason_code])).toEqual([
      ["good", "BadUserAccessDenied"],
    ]);
    expect(at(900, bad(900, "read: BadUserAccessDenied", "BadUserAccessDenied"))).toEqual([]);
    // the events stay valid against the published schema
    assertValidEvents(
      [...lost, ...unknown, ...denied, ...again].map((e, i) =>
        toCloudEvent(e, BigInt(i), cloudEventId("t", BigInt(i)), { gatewayId: "edge-1" }),
      ),
    );
  });

  it("point 4: uncertain values whose code changes are an event too, and telemetry goes on", () => {
    const engine = createEngine([device]);
    const uncertain = (at: number, value: number, code: string): TagSample => ({
      device: "line-ua",
      tag: "speed",
      value,
      quality: "uncertain",
      reason: code,
      reasonCode: code,
      readTime: at,
    });
    engine.apply([uncertain(0, 1, "UncertainLastUsableValue")], 0);
    const next = engine.apply([uncertain(100, 1, "UncertainSensorNotAccurate")], 100);
    expect(next.map((e) => [e.type, e.data.previous_quality, e.data.reason_code])).toEqual([
      ["plc2mqtt.quality.changed", "uncertain", "UncertainSensorNotAccurate"],
    ]);
  });
});
