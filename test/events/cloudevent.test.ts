/** The CloudEvents envelope: attributes, extensions, data.context, determinism, sequences. */
import { describe, expect, it } from "vitest";
import {
  CONTENT_TYPE,
  cloudEventId,
  formatSequence,
  parseSequence,
  serializeCloudEvent,
  serializeCloudEventBatch,
  toCloudEvent,
  withReplay,
} from "../../src/events/cloudevent.ts";
import type { GatewayEvent } from "../../src/events/types.ts";
import { assertValidBatch, assertValidEvent } from "../support/event-schema.ts";
import { GATEWAY, SAMPLES } from "./samples.ts";

const ctx = { gatewayId: GATEWAY };
const EPOCH = "k7f3q9";

function render(event: GatewayEvent, sequence: bigint, replay?: boolean): string {
  return serializeCloudEvent(
    toCloudEvent(event, sequence, cloudEventId(EPOCH, sequence), ctx, replay),
  );
}

describe("toCloudEvent", () => {
  it("renders a telemetry event with every attribute of wire format v1", () => {
    const ce = JSON.parse(render(SAMPLES.telemetry, 42n));
    expect(ce).toEqual({
      specversion: "1.0",
      id: "k7f3q9-00000000000000000042",
      source: "plc2mqtt://line1-edge-01/press-1",
      type: "plc2mqtt.telemetry",
      subject: "temperature",
      time: "2025-03-14T08:30:00.123Z",
      sequence: "00000000000000000042",
      datacontenttype: "application/json",
      site: "berlin",
      area: "stamping",
      line: "line-1",
      equipment: "press-1",
      data: {
        value: 71.5,
        previous: 70.9,
        quality: "good",
        unit: "degC",
        reason: "change",
        context: { batch_id: "B-2025-0042" },
      },
    });
    expect(CONTENT_TYPE).toBe("application/cloudevents+json");
  });

  it("gives gateway-level events the gateway as source", () => {
    const ce = toCloudEvent(SAMPLES.gatewayStatus, 1n, cloudEventId(EPOCH, 1n), ctx);
    expect(ce.source).toBe("plc2mqtt://line1-edge-01");
  });

  it("leaves out asset levels that are not set and data.context when empty", () => {
    const ce = toCloudEvent(
      { ...SAMPLES.stateChanged, asset: { site: "berlin", line: "" }, context: {} },
      7n,
      cloudEventId(EPOCH, 7n),
      ctx,
    );
    expect(ce).toMatchObject({ site: "berlin" });
    expect(Object.keys(ce)).not.toContain("area");
    expect(Object.keys(ce)).not.toContain("line");
    expect(Object.keys(ce)).not.toContain("equipment");
    expect(Object.keys(ce.data)).not.toContain("context");
    assertValidEvent(serializeCloudEvent(ce));
  });

  it("marks replays only when asked", () => {
    expect(JSON.parse(render(SAMPLES.telemetry, 3n)).replay).toBeUndefined();
    expect(JSON.parse(render(SAMPLES.telemetry, 3n, false)).replay).toBeUndefined();
    const replayed = render(SAMPLES.telemetry, 3n, true);
    expect(JSON.parse(replayed).replay).toBe(true);
    expect(withReplay(render(SAMPLES.telemetry, 3n))).toBe(replayed);
    assertValidEvent(replayed);
  });

  it("refuses what would make an invalid document", () => {
    const id = cloudEventId(EPOCH, 1n);
    expect(() => toCloudEvent({ ...SAMPLES.telemetry, time: Number.NaN }, 1n, id, ctx)).toThrow(
      /temperature: time NaN is not a valid instant/,
    );
    expect(() => toCloudEvent({ ...SAMPLES.telemetry, device: "press 1" }, 1n, id, ctx)).toThrow(
      /device id "press 1" must start with a letter or digit/,
    );
    expect(() => toCloudEvent(SAMPLES.telemetry, -1n, id, ctx)).toThrow(/unsigned 64-bit/);
    expect(() =>
      toCloudEvent(
        { ...SAMPLES.telemetry, data: { ...SAMPLES.telemetry.data, context: {} } },
        1n,
        id,
        ctx,
      ),
    ).toThrow(/data.context is reserved/);
  });
});

describe("serializeCloudEvent", () => {
  it("writes the same bytes whatever order the keys were built in", () => {
    const a = toCloudEvent(SAMPLES.trigger, 9n, cloudEventId(EPOCH, 9n), ctx);
    const reversed = Object.fromEntries(Object.entries(a).reverse()) as typeof a;
    reversed.data = Object.fromEntries(Object.entries(a.data).reverse());
    const text = serializeCloudEvent(a);
    expect(serializeCloudEvent(reversed)).toBe(text);
    expect(text.startsWith('{"specversion":"1.0","id":"k7f3q9-00000000000000000009",')).toBe(true);
    expect(text.endsWith('"value":true}}')).toBe(true);
    expect(Object.keys(JSON.parse(text)).at(-1)).toBe("data");
  });

  it("keeps a __proto__ key in data an ordinary key", () => {
    const ce = toCloudEvent(SAMPLES.trigger, 9n, cloudEventId(EPOCH, 9n), ctx);
    const hostile = JSON.parse('{"__proto__": 1, "a": 2}');
    const text = serializeCloudEvent({ ...ce, data: { ...ce.data, snapshot: hostile } });
    expect(JSON.parse(text).data.snapshot).toEqual(JSON.parse('{"__proto__": 1, "a": 2}'));
  });

  it("refuses values JSON cannot carry, naming where they are", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const ce = toCloudEvent(
        { ...SAMPLES.telemetry, data: { ...SAMPLES.telemetry.data, value: bad } },
        5n,
        cloudEventId(EPOCH, 5n),
        ctx,
      );
      expect(() => serializeCloudEvent(ce)).toThrow(
        `event k7f3q9-00000000000000000005: data.value is ${bad}, which JSON cannot carry`,
      );
    }
    const ce = toCloudEvent(SAMPLES.trigger, 5n, cloudEventId(EPOCH, 5n), ctx);
    const nested = { ...ce, data: { ...ce.data, snapshot: { arr: [1, Number.NaN] } } };
    expect(() => serializeCloudEvent(nested)).toThrow(/data\.snapshot\.arr\[1\] is NaN/);
  });

  it("refuses extension attributes CloudEvents does not allow", () => {
    const ce = toCloudEvent(SAMPLES.telemetry, 5n, cloudEventId(EPOCH, 5n), ctx);
    expect(() => serializeCloudEvent({ ...ce, Shift: "a" } as typeof ce)).toThrow(
      /attribute name "Shift" must be a-z0-9 only/,
    );
    expect(() => serializeCloudEvent({ ...ce, shift: { a: 1 } } as unknown as typeof ce)).toThrow(
      /attribute shift .* must be a string, boolean or finite number/,
    );
  });

  it("writes a batch as an array of the same documents", () => {
    const ces = [1n, 2n].map((s) =>
      toCloudEvent(SAMPLES.telemetry, s, cloudEventId(EPOCH, s), ctx),
    );
    const batch = serializeCloudEventBatch(ces);
    expect(batch).toBe(`[${ces.map(serializeCloudEvent).join(",")}]`);
    assertValidBatch(batch);
  });
});

describe("sequence numbers", () => {
  it("format as 20 zero-padded digits and parse back, up to 2^64 - 1", () => {
    const cases: [bigint, string][] = [
      [0n, "00000000000000000000"],
      [1n, "00000000000000000001"],
      [2n ** 53n + 1n, "00009007199254740993"],
      [2n ** 63n, "09223372036854775808"],
      [2n ** 64n - 1n, "18446744073709551615"],
    ];
    for (const [n, text] of cases) {
      expect(formatSequence(n)).toBe(text);
      expect(parseSequence(text)).toBe(n);
    }
    expect(parseSequence("42")).toBe(42n);
  });

  it("sort as strings in numeric order", () => {
    const numbers = [2n ** 63n, 10n, 9n, 2n ** 32n, 100n, 0n];
    const sorted = numbers.map(formatSequence).sort();
    expect(sorted.map(parseSequence)).toEqual([...numbers].sort((a, b) => (a < b ? -1 : 1)));
  });

  it("refuse what is not an unsigned 64-bit decimal", () => {
    expect(() => formatSequence(-1n)).toThrow(/sequence -1 is not an unsigned 64-bit integer/);
    expect(() => formatSequence(2n ** 64n)).toThrow(/not an unsigned 64-bit integer/);
    for (const bad of ["", "-1", "+1", " 1", "1e3", "0x10", "123456789012345678901"]) {
      expect(() => parseSequence(bad), bad).toThrow(/is not a decimal of 1 to 20 digits/);
    }
    expect(() => parseSequence("18446744073709551616")).toThrow(/beyond the unsigned 64-bit/);
  });

  it("make ids of the epoch and the padded sequence", () => {
    expect(cloudEventId("01J9ZK-4", 2n ** 63n)).toBe("01J9ZK-4-09223372036854775808");
    expect(() => cloudEventId("", 1n)).toThrow(/journal epoch "" must be non-empty/);
    expect(() => cloudEventId("a/b", 1n)).toThrow(/journal epoch "a\/b"/);
  });
});

describe("time", () => {
  it("is RFC 3339 UTC with milliseconds, also on whole seconds", () => {
    const ce = toCloudEvent(
      { ...SAMPLES.telemetry, time: Date.UTC(2030, 0, 1) },
      1n,
      cloudEventId(EPOCH, 1n),
      ctx,
    );
    expect(ce.time).toBe("2030-01-01T00:00:00.000Z");
  });
});
