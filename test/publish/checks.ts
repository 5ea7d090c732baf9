/** Assertions on what a subscriber received from the publisher. */
import { expect } from "vitest";
import type { Received } from "../support/mosquitto.ts";
import { parse } from "./fixtures.ts";

/**
 * Every sequence in `expected` arrived, first arrivals in sequence order, and each duplicate is
 * byte-identical to its first arrival. Returns the sequences that arrived more than once.
 */
export function expectCompleteInOrder(messages: readonly Received[], expected: number[]): number[] {
  const firsts = new Map<number, string>();
  const order: number[] = [];
  const duplicates: number[] = [];
  for (const m of parse(messages)) {
    const seen = firsts.get(m.sequence);
    if (seen === undefined) {
      firsts.set(m.sequence, m.payload);
      order.push(m.sequence);
    } else {
      expect(m.payload).toBe(seen);
      duplicates.push(m.sequence);
    }
  }
  expect(order).toEqual(expected);
  return duplicates;
}
