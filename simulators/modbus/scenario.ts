/**
 * Runs a scenario (see scenario-file.ts for the format). Invariant: the values written are a
 * pure function of the scenario, the seed and the total time advanced: time moves in fixed
 * steps (the remainder of an advance() carries over), and every step draws from the seeded
 * generator in the same order whatever the state. So advance(1000) twice equals advance(2000).
 * Values go out through a sink, which may refuse (frozen addresses); the run's own state goes
 * on regardless.
 */
import type { ModbusAddress } from "../../src/config/modbus-address.ts";
import { encodeRegisters } from "../../src/drivers/modbus/codec.ts";
import type { WordTable } from "./memory.ts";
import { createRng, type Rng } from "./rng.ts";
import type { ScenarioDef } from "./scenario-file.ts";

export interface ScenarioSink {
  writeWords(unit: number, table: WordTable, offset: number, words: readonly number[]): void;
  writeBit(unit: number, address: ModbusAddress, value: boolean): void;
}

interface CounterState {
  value: number;
  carry: number;
}

export class ScenarioRun {
  readonly #def: ScenarioDef;
  readonly #sink: ScenarioSink;
  readonly #rng: Rng;
  #pending = 0;
  #state: string;
  #stateLeft: number;
  readonly #counters: CounterState[];
  readonly #levels: number[];
  #batch: number;
  #batchStart = 0;
  #pulseLeft = 0;

  constructor(def: ScenarioDef, seed: number, sink: ScenarioSink) {
    this.#def = def;
    this.#sink = sink;
    this.#rng = createRng(seed);
    this.#state = def.state.initial;
    this.#stateLeft = this.#drawDuration(this.#state);
    this.#counters = def.counters.map(() => ({ value: 0, carry: 0 }));
    this.#levels = def.signals.map((s) => s.rest);
    this.#batch = def.batch?.first ?? 0;
    this.#write(def.signals.map((s) => s.rest));
  }

  /** The current state's name (for tests and the CLI). */
  get state(): string {
    return this.#state;
  }

  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance(${ms}): not a duration`);
    this.#pending += ms;
    const step = this.#def.step;
    if (this.#pending < step) return;
    let values: number[] = [];
    while (this.#pending >= step) {
      this.#pending -= step;
      values = this.#step(step);
    }
    this.#write(values);
  }

  #drawDuration(state: string): number {
    const { min, max } = this.#def.state.states[state]!;
    const ms = min + this.#rng() * (max - min);
    return Math.max(this.#def.step, Math.round(ms / this.#def.step) * this.#def.step);
  }

  #nextState(): string {
    const next = Object.entries(this.#def.state.states[this.#state]!.next ?? {});
    const total = next.reduce((sum, [, weight]) => sum + weight, 0);
    let pick = this.#rng() * total;
    for (const [name, weight] of next) {
      pick -= weight;
      if (pick < 0) return name;
    }
    return next.at(-1)?.[0] ?? this.#state;
  }

  /** One step of `dt` ms; returns the signals' written values. */
  #step(dt: number): number[] {
    const def = this.#def;
    this.#stateLeft -= dt;
    if (this.#stateLeft <= 0) {
      this.#state = this.#nextState();
      this.#stateLeft = this.#drawDuration(this.#state);
    }
    def.counters.forEach((c, i) => {
      const jitter = 0.5 + this.#rng();
      if (!c.in_states.includes(this.#state)) return;
      const counter = this.#counters[i]!;
      counter.carry += ((c.per_minute * dt) / 60_000) * jitter;
      const whole = Math.floor(counter.carry);
      counter.carry -= whole;
      counter.value = (counter.value + whole) % (c.type === "uint16" ? 0x1_0000 : 0x1_0000_0000);
    });
    const values = def.signals.map((s, i) => {
      const noise = (this.#rng() * 2 - 1) * s.noise;
      const target = s.targets[this.#state] ?? s.rest;
      const level =
        this.#levels[i]! + (target - this.#levels[i]!) * (1 - Math.exp(-dt / s.time_constant));
      this.#levels[i] = level;
      const factor = 10 ** s.decimals;
      return Math.round((level + noise) * factor) / factor;
    });
    this.#stepBatch(dt);
    return values;
  }

  #stepBatch(dt: number): void {
    const batch = this.#def.batch;
    if (batch === undefined) return;
    if (this.#pulseLeft > 0) {
      this.#pulseLeft -= dt;
      if (this.#pulseLeft <= 0) this.#batch += 1;
      return;
    }
    const index = this.#def.counters.findIndex((c) => c.name === batch.counter);
    const count = this.#counters[index]!.value;
    if (count - this.#batchStart >= batch.size) {
      this.#batchStart += batch.size;
      this.#pulseLeft = batch.done_pulse;
    }
  }

  #write(signalValues: readonly number[]): void {
    const def = this.#def;
    const unit = def.unit;
    const words = (at: ModbusAddress, w: readonly number[]) =>
      this.#sink.writeWords(unit, at.table as WordTable, at.offset, w);
    words(def.state.address, [def.state.states[this.#state]!.value]);
    def.counters.forEach((c, i) => {
      const spec = { type: c.type, byteOrder: c.byte_order };
      words(c.address, encodeRegisters(this.#counters[i]!.value, spec));
    });
    def.signals.forEach((s, i) => {
      const spec = { type: s.type, byteOrder: s.byte_order, scale: s.scale };
      let encoded: number[];
      try {
        encoded = encodeRegisters(signalValues[i]!, spec);
      } catch {
        return; // outside the type's range (an integer signal's noise): keep the last value
      }
      words(s.address, encoded);
    });
    const batch = def.batch;
    if (batch !== undefined) {
      const id = `${batch.id_prefix}${String(this.#batch).padStart(batch.id_digits, "0")}`;
      const spec = { type: "string" as const, byteOrder: "ABCD" as const, length: batch.id_length };
      words(batch.id_address, encodeRegisters(id, spec));
      this.#sink.writeBit(unit, batch.done_address, this.#pulseLeft > 0);
    }
  }
}
