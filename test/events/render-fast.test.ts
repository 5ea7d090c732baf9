/**
 * The one-pass renderer (render-fast.ts) writes exactly the bytes of the reference renderer
 * (serializeCloudEvent(toCloudEvent(...))) for every sample event and for randomized data, and
 * refuses what the reference refuses, with the same message.
 */
import { describe, expect, it } from "vitest";
import { serializeCloudEvent, toCloudEvent } from "../../src/events/cloudevent.ts";
import { fastRenderer } from "../../src/events/render-fast.ts";
import type { GatewayEvent } from "../../src/events/types.ts";
import { GATEWAY, SAMPLES } from "./samples.ts";

const reference = (event: GatewayEvent, sequence: bigint, id: string) =>
  serializeCloudEvent(toCloudEvent(event, sequence, id, { gatewayId: GATEWAY }));

/** A small seeded generator, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 2 ? 5 : 7));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return [0, -0, 1e21, 1e-7, 0.1 + 0.2, -123456789.125, 2 ** 53][Math.floor(r() * 7)];
    case 3:
      return ["", 'a"b\\c', "ünï\u0000\u2028😀", "\ud800", "line\nbreak"][Math.floor(r() * 5)];
    case 4:
      return Math.round(r() * 1e6) / 100;
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const keys = ["value", "previous", "__proto__", "Zeta", "alpha", "b", "a", "ä", "10", "9"];
      const out: Record<string, unknown> = {};
      for (const key of keys)
        if (r() < 0.4)
          Object.defineProperty(out, key, {
            value: randomValue(r, depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
      return out;
    }
  }
}

describe("the one-pass CloudEvents renderer", () => {
  it("writes the reference's bytes for every sample event", () => {
    const render = fastRenderer(GATEWAY);
    for (const [name, event] of Object.entries(SAMPLES)) {
      const e = event as GatewayEvent;
      expect(render(e, 42n, `abc-${name}`), name).toBe(reference(e, 42n, `abc-${name}`));
      // twice: the per-device cache gives the same
      expect(render(e, 43n, "x")).toBe(reference(e, 43n, "x"));
    }
  });

  it("writes the reference's bytes for randomized data, context and assets", () => {
    const render = fastRenderer(GATEWAY);
    const r = rng(7);
    for (let i = 0; i < 3000; i++) {
      const asset = r() < 0.5 ? { site: "berlin", line: "l-1" } : { area: 'a"1', equipment: "" };
      const event: GatewayEvent = {
        type: "plc2mqtt.telemetry",
        device: ["press-1", "dev.2", "x_3"][i % 3]!,
        subject: `t${i % 7}`,
        time: 1_700_000_000_000 + Math.floor(r() * 1e9),
        data: randomValue(r, 0) as GatewayEvent["data"],
        topicClass: "telemetry",
        asset,
        ...(r() < 0.3 ? { context: { batch: "B-1", count: i } } : {}),
      };
      if (typeof event.data !== "object" || event.data === null || Array.isArray(event.data)) {
        event.data = { value: event.data as never };
      }
      let expected: string | Error;
      try {
        expected = reference(event, BigInt(i), `e-${i}`);
      } catch (err) {
        expected = err as Error;
      }
      if (expected instanceof Error) {
        expect(() => render(event, BigInt(i), `e-${i}`)).toThrow(expected.message);
      } else {
        expect(render(event, BigInt(i), `e-${i}`)).toBe(expected);
      }
    }
  });

  it("writes the reference's bytes past the bound of its per-tag cache, and after a reload", () => {
    // the text between id and time is kept per device, type and subject, at most 100,000
    // together: past that it starts afresh; a device's new asset (a reload) gets texts anew.
    // 60,000 subjects, each with two types in turn: the bound is passed once on the way
    const render = fastRenderer(GATEWAY);
    const base = SAMPLES.telemetry as GatewayEvent;
    const check = (event: GatewayEvent, n: number) =>
      expect(render(event, BigInt(n), `e-${n}`)).toBe(reference(event, BigInt(n), `e-${n}`));
    for (let n = 0; n < 130_000; n++) {
      const type = n % 7 === 0 ? "x.y" : base.type;
      const event = { ...base, subject: `tag${n % 60_000}`, type };
      if (n % 101 === 0) check(event, n);
      else render(event, BigInt(n), `e-${n}`);
    }
    check({ ...base, asset: { site: "elsewhere", line: "l2" } }, 1);
    check({ ...base, subject: "tag1" }, 2);
  });

  it("writes each event's own time when events share one, change it, and come back to it", () => {
    const render = fastRenderer(GATEWAY);
    const t1 = 1_765_000_000_123;
    const t2 = t1 + 100;
    const times = [t1, t1, t1, t2, t2, Number.NaN, t1, 0, -1, t1];
    times.forEach((time, i) => {
      const event = { ...(SAMPLES.telemetry as GatewayEvent), time };
      const seq = BigInt(i + 1);
      if (Number.isNaN(time)) {
        expect(() => render(event, seq, `t-${i}`)).toThrow(); // refused: the cache is untouched
        return;
      }
      expect(render(event, seq, `t-${i}`), `event ${i}`).toBe(reference(event, seq, `t-${i}`));
    });
  });

  it("writes the reference's bytes for flat data not plain, not in order or not finite", () => {
    // flat data in canonical order goes through one JSON.stringify: only plain objects of
    // strings, booleans, null and finite numbers may, the rest key by key as before
    class Reading {
      value = 3;
      unit = "bar";
      toJSON() {
        return { value: "replaced" };
      }
    }
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, b: null });
    const getter = Object.defineProperty({ a: 1 }, "b", { get: () => "got", enumerable: true });
    const datas: unknown[] = [
      { previous: 1, quality: "good", reason: "change", value: 2 },
      { value: 2, previous: 1 },
      { 10: "ten", 9: "nine", a: true },
      { a: -0, b: 1e21, c: 1e-7, d: 'ünï\u2028"' },
      { a: 1, b: undefined },
      { a: 1, b: new Date(0) },
      { a: 1, b: { c: 2 } },
      { a: 1, b: [1, 2] },
      { a: 1, toJSON: "not a function" },
      { value: Number.POSITIVE_INFINITY },
      { a: 1, b: Number.NaN },
      new Reading(),
      bare,
      getter,
    ];
    const render = fastRenderer(GATEWAY);
    const { context: _, ...telemetry } = SAMPLES.telemetry as GatewayEvent;
    datas.forEach((data, i) => {
      const event = { ...telemetry, data: data as GatewayEvent["data"] };
      let expected: string | Error;
      try {
        expected = reference(event, 7n, "f");
      } catch (err) {
        expected = err as Error;
      }
      if (expected instanceof Error) expect(() => render(event, 7n, "f")).toThrow(expected.message);
      else expect(render(event, 7n, "f"), `data ${i}`).toBe(expected);
    });
  });

  it("refuses what the reference refuses, with its message", () => {
    const render = fastRenderer(GATEWAY);
    const base = SAMPLES.telemetry as GatewayEvent;
    const bad: GatewayEvent[] = [
      { ...base, type: "" },
      { ...base, subject: "" },
      { ...base, time: Number.NaN },
      { ...base, device: "bad device" },
      { ...base, data: { value: Number.POSITIVE_INFINITY } },
      { ...base, data: { context: 1 } },
    ];
    for (const event of bad) {
      expect(() => reference(event, 1n, "id")).toThrow();
      let message = "";
      try {
        reference(event, 1n, "id");
      } catch (err) {
        message = (err as Error).message;
      }
      expect(() => render(event, 1n, "id")).toThrow(message);
    }
  });
});
