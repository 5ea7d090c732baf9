/**
 * The simulated PLC's data: per unit id, 65536 coils, discrete inputs, input registers and
 * holding registers, all zero until written. A unit's tables are allocated on its first write;
 * reads of a unit never written see zeros. Bits are stored one per byte (0 or 1), registers
 * as uint16.
 */
import { type ModbusAddress, parseModbusAddress } from "../../src/config/modbus-address.ts";

export interface UnitTables {
  coil: Uint8Array;
  discrete_input: Uint8Array;
  input_register: Uint16Array;
  holding_register: Uint16Array;
}

export type BitTable = "coil" | "discrete_input";
export type WordTable = "input_register" | "holding_register";

const SIZE = 65_536;

function emptyTables(): UnitTables {
  return {
    coil: new Uint8Array(SIZE),
    discrete_input: new Uint8Array(SIZE),
    input_register: new Uint16Array(SIZE),
    holding_register: new Uint16Array(SIZE),
  };
}

const ZERO = emptyTables();

export function checkUnit(unit: number): void {
  if (!Number.isInteger(unit) || unit < 0 || unit > 255) {
    throw new RangeError(`unit id ${unit} is not an integer 0..255`);
  }
}

/** Parses a 0-based tag-map address, adding the address to the message on failure. */
export function parseAddress(address: string): ModbusAddress {
  return parseModbusAddress(address, 0);
}

export class Memory {
  readonly #units = new Map<number, UnitTables>();

  /** The unit's tables for reading (shared zeros when never written: do not write to them). */
  read(unit: number): UnitTables {
    return this.#units.get(unit) ?? ZERO;
  }

  /** The unit's tables for writing, allocated on first use. */
  write(unit: number): UnitTables {
    let tables = this.#units.get(unit);
    if (tables === undefined) {
      tables = emptyTables();
      this.#units.set(unit, tables);
    }
    return tables;
  }

  setRegisters(unit: number, address: string, words: readonly number[]): void {
    checkUnit(unit);
    const at = wordAddress(address, words.length);
    const table = this.write(unit)[at.table];
    words.forEach((word, i) => {
      if (!Number.isInteger(word) || word < 0 || word > 0xffff) {
        throw new RangeError(`setRegisters ${address}: word ${i} (${word}) is not 0..65535`);
      }
      table[at.offset + i] = word;
    });
  }

  getRegisters(unit: number, address: string, count: number): number[] {
    checkUnit(unit);
    const at = wordAddress(address, count);
    return Array.from(this.read(unit)[at.table].subarray(at.offset, at.offset + count));
  }

  setBit(unit: number, address: string, value: boolean): void {
    checkUnit(unit);
    const at = parseAddress(address);
    const tables = this.write(unit);
    if (at.table === "coil" || at.table === "discrete_input") {
      tables[at.table][at.offset] = value ? 1 : 0;
      return;
    }
    if (at.bit === undefined) throw new RangeError(`setBit ${address}: a register needs .bit`);
    const words = tables[at.table];
    const mask = 1 << at.bit;
    words[at.offset] = value ? words[at.offset]! | mask : words[at.offset]! & ~mask;
  }

  getBit(unit: number, address: string): boolean {
    checkUnit(unit);
    const at = parseAddress(address);
    const tables = this.read(unit);
    if (at.table === "coil" || at.table === "discrete_input") {
      return tables[at.table][at.offset] === 1;
    }
    if (at.bit === undefined) throw new RangeError(`getBit ${address}: a register needs .bit`);
    return ((tables[at.table][at.offset]! >> at.bit) & 1) === 1;
  }
}

/** A register address without a bit, with room for `count` registers. */
export function wordAddress(address: string, count: number): { table: WordTable; offset: number } {
  const at = parseAddress(address);
  if (at.table === "coil" || at.table === "discrete_input") {
    throw new RangeError(`${address} is a bit address: use setBit/getBit`);
  }
  if (at.bit !== undefined) throw new RangeError(`${address} names a bit: use setBit/getBit`);
  if (!Number.isInteger(count) || count < 0 || at.offset + count > SIZE) {
    throw new RangeError(`${address} + ${count} registers runs past address 65535`);
  }
  return { table: at.table, offset: at.offset };
}
