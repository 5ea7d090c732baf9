/**
 * The simulated device's register map, for issue 13 point 9: addresses that do not exist
 * (holes) and a smaller request size than the protocol's. Many real devices have both: they
 * answer exception 2 (illegal data address) to any request that touches a missing register,
 * and exception 3 (illegal data value) to a read longer than they take.
 *
 * Checks follow the specification's order, after the protocol's own: the quantity (exception
 * 3) before the address (exception 2). Holes apply to every unit id and to reads and writes
 * alike; the size limits to reads (functions 1 to 4, and the read part of 23).
 */
import { isRegisterTable, type ModbusTable } from "../../src/config/modbus-address.ts";
import { parseAddress } from "./memory.ts";

export interface RegisterMapOptions {
  /** Addresses that do not exist, in tag-map notation ("HR101", "IR7", "C3", "DI12"). */
  holes?: readonly string[];
  /** Register reads longer than this are answered with exception 3 (default 125). */
  maxRegistersPerRequest?: number;
  /** Coil and discrete input reads longer than this are answered with exception 3 (2000). */
  maxBitsPerRequest?: number;
}

const TABLE_OF: Record<number, ModbusTable> = {
  1: "coil",
  2: "discrete_input",
  3: "holding_register",
  4: "input_register",
  5: "coil",
  6: "holding_register",
  15: "coil",
  16: "holding_register",
  23: "holding_register",
};

const READS = new Set([1, 2, 3, 4, 23]);

export class RegisterMap {
  readonly #holes = new Map<ModbusTable, Set<number>>();
  readonly #maxRegisters: number;
  readonly #maxBits: number;

  constructor(options: RegisterMapOptions = {}) {
    for (const text of options.holes ?? []) {
      const at = parseAddress(text);
      if (at.bit !== undefined) throw new RangeError(`hole ${text}: give a register, not a bit`);
      const set = this.#holes.get(at.table) ?? new Set<number>();
      set.add(at.offset);
      this.#holes.set(at.table, set);
    }
    this.#maxRegisters = checkLimit("maxRegistersPerRequest", options.maxRegistersPerRequest, 125);
    this.#maxBits = checkLimit("maxBitsPerRequest", options.maxBitsPerRequest, 2000);
  }

  /**
   * The exception a request that passed the protocol's checks gets from this device, or
   * undefined when the device serves it. `address` and `quantity` are the read range (for 23,
   * the read part; its write range is checked with a second call, `quantity` of the write).
   */
  refuse(functionCode: number, address: number, quantity: number): number | undefined {
    const table = TABLE_OF[functionCode];
    if (table === undefined) return undefined;
    if (READS.has(functionCode)) {
      const max = isRegisterTable(table) ? this.#maxRegisters : this.#maxBits;
      if (quantity > max) return 3;
    }
    const holes = this.#holes.get(table);
    if (holes === undefined) return undefined;
    for (let a = address; a < address + quantity; a++) if (holes.has(a)) return 2;
    return undefined;
  }
}

function checkLimit(name: string, value: number | undefined, protocolMax: number): number {
  if (value === undefined) return protocolMax;
  if (!Number.isInteger(value) || value < 1 || value > protocolMax) {
    throw new RangeError(`${name} ${value} is not a whole number from 1 to ${protocolMax}`);
  }
  return value;
}
