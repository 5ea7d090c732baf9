/**
 * Value helpers shared by the rules. Contract:
 * - `sameValue` compares by value: primitives with ===, arrays and objects deeply (key order
 *   does not matter). Strings, bools and JSON values "change" exactly when this is false.
 * - `asNumber` reads numbers, and 64-bit integers that travel as decimal strings (STYLE
 *   habit 7), as numbers; anything else is not a number.
 * - `truthy` is what rising and falling edges see: true, a non-zero number, a non-empty
 *   string (a 64-bit integer beyond 2^53 is never "0"), any array or object.
 * - `nonFiniteReason` names why a value cannot travel in JSON: "not a number" for NaN,
 *   "infinite" for +-Infinity, also inside arrays and structures (the engine turns such
 *   samples into quality bad with that reason and value null).
 */
import type { TagValue } from "../events/sample.ts";

export function sameValue(a: TagValue, b: TagValue): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => sameValue(item, b[i]!));
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && sameValue(a[key]!, b[key]!));
}

const INTEGER_TEXT = /^-?\d+$/;

export function asNumber(value: TagValue): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "string" && INTEGER_TEXT.test(value)) return Number(value);
  return undefined;
}

export function truthy(value: TagValue): boolean {
  if (value === null) return false;
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0;
  if (typeof value === "string") return value !== "";
  return true;
}

export function nonFiniteReason(value: TagValue): "not a number" | "infinite" | undefined {
  if (typeof value === "number") {
    if (Number.isFinite(value)) return undefined;
    return Number.isNaN(value) ? "not a number" : "infinite";
  }
  // arrays and structures (OPC UA) too: one NaN element makes the whole value unsendable
  if (value !== null && typeof value === "object") {
    for (const item of Array.isArray(value) ? value : Object.values(value)) {
      const reason = nonFiniteReason(item);
      if (reason !== undefined) return reason;
    }
  }
  return undefined;
}
