/**
 * IdSlots (src/lib/id-slots.ts), the in-flight tables of the publisher and the MQTT connection:
 * ids in rotation, full, taken only by their holder, in order at a close, growing. Why it is
 * not a Map is a matter of V8's collector, measured by the benchmark (`gateway_gc_*` figures).
 */
import { describe, expect, it } from "vitest";
import { IdSlots } from "../../src/lib/id-slots.ts";

describe("IdSlots", () => {
  it("hands ids out in rotation, skipping those taken, and none when all are", () => {
    const slots = new IdSlots<string>(3);
    expect([slots.add("a"), slots.add("b"), slots.add("c")]).toEqual([1, 2, 3]);
    expect(slots.add("d")).toBeUndefined();
    expect(slots.take(2)).toBe("b");
    expect(slots.add("e")).toBe(2);
    expect(slots.take(1)).toBe("a");
    expect(slots.take(3)).toBe("c");
    // rotation goes on after the last id handed out (2), not back to the lowest free one
    expect(slots.add("f")).toBe(3);
    expect(slots.add("g")).toBe(1);
    expect(slots.size).toBe(3);
  });

  it("takes a value only once, and with `expected` only the value it holds", () => {
    const slots = new IdSlots<{ n: number }>(4);
    const a = { n: 1 };
    const id = slots.add(a)!;
    expect(slots.take(id, { n: 1 })).toBeUndefined(); // another object
    expect(slots.get(id)).toBe(a);
    expect(slots.take(id, a)).toBe(a);
    expect(slots.take(id)).toBeUndefined();
    expect(slots.take(0)).toBeUndefined();
    expect(slots.take(99)).toBeUndefined();
    expect(slots.size).toBe(0);
  });

  it("gives every value back at a close, oldest first, and is empty after", () => {
    const slots = new IdSlots<string>(4);
    for (const v of ["a", "b", "c", "d"]) slots.add(v);
    slots.take(1);
    slots.take(2);
    slots.add("e"); // id 1: the rotation wrapped
    expect([...slots.values()]).toEqual(["c", "d", "e"]);
    expect(slots.takeAll()).toEqual(["c", "d", "e"]);
    expect(slots.size).toBe(0);
    expect(slots.add("f")).toBe(2);
  });

  it("grows: values keep their ids", () => {
    const slots = new IdSlots<string>(2);
    slots.add("a");
    slots.add("b");
    expect(slots.add("c")).toBeUndefined();
    slots.grow(4);
    expect(slots.capacity).toBe(4);
    expect(slots.add("c")).toBe(3);
    expect([slots.get(1), slots.get(2), slots.get(3)]).toEqual(["a", "b", "c"]);
    expect(() => new IdSlots(0)).toThrow(RangeError);
  });
});
