/**
 * The seeded test-stand schedule. Pure: it only calls `write(name, value)`; no timers, no I/O.
 *
 * Time moves in fixed steps of STEP_MS of scenario time, so the values depend only on the seed
 * and the total time advanced, never on how advance() calls were split. Per cycle of CYCLE_MS:
 *   step 1        a new part: SerialNumber "SN-<seed>-<n>" (n = 1, 2, ...), Result 0; the
 *                 cycle is a fault cycle with probability FAULT_P (MachineState 2 all cycle,
 *                 no result), otherwise MachineState 1 (running)
 *   every 5 steps while running: Measurement1..3 = base +- noise (seeded)
 *   step 40       (4 s) the test completes: Result 1 pass (p 0.85) or 2 fail, Curve updated,
 *                 ResultReady true
 *   step 42       ResultReady false
 *   step 45       MachineState 0 (stopped: unloading) until the next cycle
 *   BatchId becomes B0002, B0003, ... every BATCH_CYCLES cycles.
 * Values written are the model's JS representation (see model.ts).
 */
import { createRng, type Rng } from "../modbus/rng.ts";
import { CURVE_POINTS, MACHINE_STATES, MEASUREMENT_BASE, RESULTS, type SimValue } from "./model.ts";

export const STEP_MS = 100;
export const CYCLE_STEPS = 50;
export const CYCLE_MS = STEP_MS * CYCLE_STEPS;
export const BATCH_CYCLES = 10;
const FAULT_P = 0.08;
const PASS_P = 0.85;
const NOISE = [0.2, 8, 0.05] as const;

export type Write = (name: string, value: SimValue) => void;

export class TestStandSchedule {
  readonly #rng: Rng;
  readonly #seed: number;
  readonly #write: Write;
  #elapsed = 0;
  #step = 0;
  #cycle = 0;
  #fault = false;

  constructor(seed: number, write: Write) {
    this.#seed = seed >>> 0;
    this.#rng = createRng(this.#seed ^ 0x0bca_5eed);
    this.#write = write;
  }

  /** Scenario time advanced so far, in ms. */
  get elapsed(): number {
    return this.#elapsed;
  }

  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`OPC UA simulator: advance(${ms}): expected a duration >= 0 ms`);
    }
    this.#elapsed += ms;
    while ((this.#step + 1) * STEP_MS <= this.#elapsed) {
      this.#step += 1;
      this.#run(this.#step);
    }
  }

  #run(step: number): void {
    const pos = step % CYCLE_STEPS;
    if (pos === 1) this.#startCycle();
    if (this.#fault) return;
    if (pos % 5 === 0 && pos < 45) this.#measure();
    if (pos === 40) this.#complete();
    if (pos === 42) this.#write("ResultReady", false);
    if (pos === 45) this.#write("MachineState", MACHINE_STATES.stopped);
  }

  #startCycle(): void {
    this.#cycle += 1;
    if (this.#cycle > 1 && (this.#cycle - 1) % BATCH_CYCLES === 0) {
      const batch = Math.floor((this.#cycle - 1) / BATCH_CYCLES) + 1;
      this.#write("BatchId", `B${String(batch).padStart(4, "0")}`);
    }
    this.#write("SerialNumber", `SN-${this.#seed}-${this.#cycle}`);
    this.#write("Result", RESULTS.none);
    this.#fault = this.#rng() < FAULT_P;
    this.#write("MachineState", this.#fault ? MACHINE_STATES.fault : MACHINE_STATES.running);
  }

  #measure(): void {
    MEASUREMENT_BASE.forEach((base, i) => {
      const noise = (this.#rng() * 2 - 1) * (NOISE[i] ?? 0);
      this.#write(`Measurement${i + 1}`, Math.round((base + noise) * 1000) / 1000);
    });
  }

  #complete(): void {
    const pass = this.#rng() < PASS_P;
    const peak = MEASUREMENT_BASE[1] * (0.9 + this.#rng() * 0.2);
    const curve = Array.from({ length: CURVE_POINTS }, (_, i) => {
      const x = i / (CURVE_POINTS - 1);
      return Math.round(peak * Math.sin(Math.PI * x) * 100) / 100;
    });
    this.#write("Curve", curve);
    this.#write("Result", pass ? RESULTS.pass : RESULTS.fail);
    this.#write("ResultReady", true);
  }
}
