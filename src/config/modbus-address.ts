/**
 * The Modbus address notation of tag maps.
 *
 *   C5      coil 5                    (function 1, write 5/15)
 *   DI12    discrete input 12         (function 2)
 *   IR10    input register 10         (function 4)
 *   HR100   holding register 100      (function 3, write 6/16)
 *   HR100.3 bit 3 (0 = least significant) of holding register 100; IR10.15 likewise
 *   40101   Modicon form: 0xxxx coils, 1xxxx discrete inputs, 3xxxx input registers,
 *           4xxxx holding registers; also six digits (400101). Always 1-based.
 *
 * The number in the prefixed forms is counted from the device's `address_base` (0 by
 * default, as on the wire; 1 when the PLC's documentation counts from 1). The parsed offset
 * is always the 0-based protocol address, 0..65535.
 */

export type ModbusTable = "coil" | "discrete_input" | "input_register" | "holding_register";

export interface ModbusAddress {
  table: ModbusTable;
  /** The 0-based protocol address sent on the wire. */
  offset: number;
  /** For a bit inside a register: 0 (least significant) to 15. */
  bit?: number;
}

const PREFIX: Record<string, ModbusTable> = {
  C: "coil",
  DI: "discrete_input",
  IR: "input_register",
  HR: "holding_register",
};

const SHORT: Record<ModbusTable, string> = {
  coil: "C",
  discrete_input: "DI",
  input_register: "IR",
  holding_register: "HR",
};

const MODICON: Record<string, ModbusTable> = {
  "0": "coil",
  "1": "discrete_input",
  "3": "input_register",
  "4": "holding_register",
};

export type AddressBase = 0 | 1;

export function isRegisterTable(table: ModbusTable): boolean {
  return table === "input_register" || table === "holding_register";
}

/** Parses an address; throws an Error whose message is fit to show next to the YAML line. */
export function parseModbusAddress(text: string, base: AddressBase = 0): ModbusAddress {
  const trimmed = text.trim().toUpperCase();
  const prefixed = /^(C|DI|IR|HR)(\d{1,5})(?:\.(\d{1,2}))?$/.exec(trimmed);
  if (prefixed) {
    const table = PREFIX[prefixed[1]!]!;
    const offset = Number(prefixed[2]) - base;
    if (offset < 0) throw new Error(`address ${text} is below ${base}: this device counts from 1`);
    if (offset > 65535) throw new Error(`address ${text} is beyond the last Modbus address`);
    return withBit(text, table, offset, prefixed[3]);
  }
  const modicon = /^([0134])(\d{4,5})(?:\.(\d{1,2}))?$/.exec(trimmed);
  if (modicon) {
    const table = MODICON[modicon[1]!]!;
    const number = Number(modicon[2]);
    if (number < 1 || number > 65536) {
      throw new Error(`address ${text}: Modicon addresses count from 1 to 65536`);
    }
    return withBit(text, table, number - 1, modicon[3]);
  }
  throw new Error(
    `address ${JSON.stringify(text)} is not Modbus notation: use C5, DI12, IR10, HR100, HR100.3 or 40101`,
  );
}

function withBit(
  text: string,
  table: ModbusTable,
  offset: number,
  bitText: string | undefined,
): ModbusAddress {
  if (bitText === undefined) return { table, offset };
  if (!isRegisterTable(table)) throw new Error(`address ${text}: only registers have bits`);
  const bit = Number(bitText);
  if (bit > 15) throw new Error(`address ${text}: a register has bits 0 to 15`);
  return { table, offset, bit };
}

/** The prefixed notation of an address, counted from `base`. */
export function formatModbusAddress(address: ModbusAddress, base: AddressBase = 0): string {
  const bit = address.bit === undefined ? "" : `.${address.bit}`;
  return `${SHORT[address.table]}${address.offset + base}${bit}`;
}
