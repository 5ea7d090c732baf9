/**
 * The simulator's values, independent of node-opcua: one entry per model variable with its
 * value, status code name and source timestamp. They outlive a server restart. Every change
 * calls `onChange(name)` unless the store is frozen; unfreezing reports every name changed
 * while frozen, once, in model order.
 */
import { ALL_VARIABLES, coerce, type SimValue, specOf, type VariableSpec } from "./model.ts";

export interface Entry {
  spec: VariableSpec;
  value: SimValue;
  status: string;
  sourceTimestamp: Date;
}

/** A given source timestamp (checked, copied) or now. */
function timestamp(given: Date | undefined): Date {
  if (given === undefined) return new Date();
  if (!(given instanceof Date) || Number.isNaN(given.getTime())) {
    throw new TypeError(`OPC UA simulator: sourceTimestamp must be a valid Date, got ${given}`);
  }
  return new Date(given.getTime());
}

export class ValueStore {
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Set<string>();
  #frozen = false;
  onChange: (name: string) => void = () => {};

  constructor() {
    const now = new Date();
    for (const spec of ALL_VARIABLES) {
      this.#entries.set(spec.name, {
        spec,
        value: coerce(spec, spec.initial),
        status: "Good",
        sourceTimestamp: now,
      });
    }
  }

  entry(name: string): Entry {
    specOf(name); // a clear error for an unknown name
    return this.#entries.get(name)!;
  }

  entries(): IterableIterator<Entry> {
    return this.#entries.values();
  }

  /** A value from the schedule (status kept) or from set() (status Good). */
  write(name: string, value: unknown, status?: string, sourceTimestamp?: Date): void {
    const entry = this.entry(name);
    entry.value = coerce(entry.spec, value);
    if (status !== undefined) entry.status = status;
    entry.sourceTimestamp = timestamp(sourceTimestamp);
    this.#changed(name);
  }

  /**
   * Several values in one PLC cycle: all checked first (nothing is written when one is wrong),
   * then written with status Good and one source timestamp, and reported in the order given.
   */
  writeMany(values: Record<string, unknown>, sourceTimestamp?: Date): void {
    const coerced = Object.entries(values).map(([name, value]) => {
      const entry = this.entry(name);
      return { name, entry, value: coerce(entry.spec, value) };
    });
    const now = timestamp(sourceTimestamp);
    for (const { entry, value } of coerced) {
      entry.value = value;
      entry.status = "Good";
      entry.sourceTimestamp = now;
    }
    for (const { name } of coerced) this.#changed(name);
  }

  writeStatus(name: string, status: string): void {
    const entry = this.entry(name);
    entry.status = status;
    entry.sourceTimestamp = new Date();
    this.#changed(name);
  }

  freeze(on: boolean): void {
    if (on === this.#frozen) return;
    this.#frozen = on;
    if (on) return;
    const names = ALL_VARIABLES.map((s) => s.name).filter((n) => this.#pending.has(n));
    this.#pending.clear();
    for (const name of names) this.onChange(name);
  }

  #changed(name: string): void {
    if (this.#frozen) this.#pending.add(name);
    else this.onChange(name);
  }
}
