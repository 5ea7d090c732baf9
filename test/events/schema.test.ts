/**
 * The published events JSON Schema against the envelope code: every type the gateway emits
 * validates, and broken documents fail with messages that say what is wrong and where.
 */
import { describe, expect, it } from "vitest";
import { cloudEventId, serializeCloudEvent, toCloudEvent } from "../../src/events/cloudevent.ts";
import type { GatewayEvent } from "../../src/events/types.ts";
import { assertValidBatch, assertValidEvent, assertValidEvents } from "../support/event-schema.ts";
import { GATEWAY, SAMPLES } from "./samples.ts";

function doc(event: GatewayEvent, sequence = 1n): Record<string, unknown> {
  const ce = toCloudEvent(event, sequence, cloudEventId("e1", sequence), { gatewayId: GATEWAY });
  return JSON.parse(serializeCloudEvent(ce)) as Record<string, unknown>;
}

function withData(event: GatewayEvent, data: Record<string, unknown>): Record<string, unknown> {
  return { ...doc(event), data };
}

function violation(d: unknown): string {
  try {
    assertValidEvent(d);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`expected a violation, but the document is valid: ${JSON.stringify(d)}`);
}

describe("events JSON Schema", () => {
  it.each(Object.entries(SAMPLES))("accepts the %s event as rendered", (_name, event) => {
    assertValidEvent(
      serializeCloudEvent(
        toCloudEvent(event, 5n, "e1-00000000000000000005", { gatewayId: GATEWAY }),
      ),
    );
  });

  it("accepts the optional fields and the values of every tag type", () => {
    const t = SAMPLES.telemetry;
    assertValidEvents([
      withData(t, { value: null, previous: null, quality: "bad", reason: "initial" }),
      withData(t, {
        value: "18446744073709551615",
        previous: "1",
        quality: "good",
        reason: "heartbeat",
      }),
      withData(t, {
        value: [1, 2, 3],
        previous: [1, 2, 2],
        quality: "uncertain",
        reason: "change",
      }),
      withData(t, { value: { x: 1 }, previous: { x: 0 }, quality: "stale", reason: "change" }),
      withData(SAMPLES.stateChanged, {
        state: "running",
        previous_state: null,
        raw: true,
        previous_duration_ms: null,
      }),
      withData(SAMPLES.qualityChanged, {
        quality: "good",
        previous_quality: null,
        reason: null,
        last_good_value: null,
      }),
      withData(SAMPLES.deviceStatus, { status: "connected" }),
      withData(SAMPLES.trigger, { trigger: "batch_done", snapshot: {} }),
      { ...doc(SAMPLES.telemetry), replay: true, shift: "b", cycle: 3 },
    ]);
  });

  it("names a missing id", () => {
    const { id: _id, ...rest } = doc(SAMPLES.telemetry);
    expect(violation(rest)).toContain("/ must have required property 'id'");
  });

  it("refuses a numeric sequence", () => {
    const message = violation({ ...doc(SAMPLES.telemetry), sequence: 42 });
    expect(message).toContain('type="plc2mqtt.telemetry"');
    expect(message).toContain("/sequence must be string");
  });

  it("refuses an unpadded sequence and a malformed id, source or time", () => {
    const d = doc(SAMPLES.telemetry);
    expect(violation({ ...d, sequence: "42" })).toContain(
      '/sequence must match pattern "^[0-9]{20}$"',
    );
    expect(violation({ ...d, id: "42" })).toContain("/id must match pattern");
    expect(violation({ ...d, source: "plc2mqtt://gw/dev/extra" })).toContain(
      "/source must match pattern",
    );
    expect(violation({ ...d, time: "2025-03-14T08:30:00Z" })).toContain("/time must match pattern");
    expect(violation({ ...d, time: "2025-13-14T08:30:00.000Z" })).toContain(
      '/time must match format "date-time"',
    );
  });

  it("refuses data of the wrong shape for the type", () => {
    const message = violation(
      withData(SAMPLES.telemetry, { value: 1, quality: "fine", reason: "poll" }),
    );
    expect(message).toContain("/data must have required property 'previous'");
    expect(message).toContain(
      '/data/quality must be equal to one of the allowed values (["good","uncertain","bad","stale"])',
    );
    expect(message).toContain("/data/reason must be equal to one of the allowed values");
    expect(
      violation(withData(SAMPLES.alarmChanged, { alarm: "a", active: "yes", bit: 64, raw: 1 })),
    ).toMatch(/\/data\/active must be boolean[\s\S]*\/data\/bit must be <= 63/);
    expect(
      violation(withData(SAMPLES.journalOverflow, { dropped: 3, oldest_kept_sequence: 17 })),
    ).toContain("/data/oldest_kept_sequence must be string");
    expect(violation(withData(SAMPLES.trigger, { trigger: "x", snapshot: [1] }))).toContain(
      "/data/snapshot must be object",
    );
  });

  it("refuses an unknown data field where the shape is fixed", () => {
    expect(
      violation(withData(SAMPLES.gatewayStatus, { ...SAMPLES.gatewayStatus.data, uptime: 5 })),
    ).toContain("/data must NOT have additional properties (uptime)");
    expect(
      violation(withData(SAMPLES.telemetry, { ...SAMPLES.telemetry.data, Value: 1 })),
    ).toContain("/data must NOT have additional properties (Value)");
  });

  it("refuses unknown plc2mqtt.* types and malformed user types", () => {
    expect(violation({ ...doc(SAMPLES.telemetry), type: "plc2mqtt.telemetri" })).toContain("/type");
    expect(violation({ ...doc(SAMPLES.trigger), type: "Batch Completed" })).toContain("/type");
  });

  it("refuses extension attributes CloudEvents does not allow", () => {
    const d = doc(SAMPLES.telemetry);
    expect(violation({ ...d, Site: "berlin" })).toContain("property name must be valid");
    expect(violation({ ...d, shift: { a: 1 } })).toContain("/shift must be string,number,boolean");
    expect(violation({ ...d, replay: false })).toContain("/replay must be equal to constant");
    expect(violation({ ...d, site: "" })).toContain("/site must NOT have fewer than 1 characters");
  });

  it("refuses a gateway status from a device source", () => {
    expect(
      violation({ ...doc(SAMPLES.gatewayStatus), source: "plc2mqtt://line1-edge-01/press-1" }),
    ).toContain("/source must match pattern");
  });

  it("lists the violations of every event of a list, and checks batches", () => {
    const good = doc(SAMPLES.telemetry);
    expect(() =>
      assertValidEvents([good, { ...good, sequence: 1 }, { ...good, data: {} }]),
    ).toThrow(
      /2 of 3 events invalid:\n\[1\][\s\S]*\/sequence must be string[\s\S]*\[2\][\s\S]*required property 'value'/,
    );
    assertValidBatch(JSON.stringify([good, doc(SAMPLES.stateChanged, 2n)]));
    expect(() => assertValidBatch([])).toThrow(/must NOT have fewer than 1 items/);
    expect(() => assertValidBatch([{ ...good, id: 1 }])).toThrow(/\/0\/id must be string/);
    expect(() => assertValidEvent("{not json")).toThrow(/event is not JSON/);
  });
});
