/**
 * Executes one request PDU against the memory and returns the response PDU. Function codes
 * 1, 2, 3, 4 (read), 5, 6, 15, 16 (write) and 23 (write then read). Checks follow the
 * specification's order: unknown function -> exception 1; bad quantity, byte count or PDU
 * size -> exception 3 (reads 1..2000 bits or 1..125 registers; writes 1..1968 coils or
 * 1..123 registers; 23 writes 1..121); range past 65535 -> exception 2; then the device's
 * own register map (register-map.ts: a smaller read size -> exception 3, a missing register ->
 * exception 2). A request that fails a check changes nothing.
 */
import type { Memory, UnitTables } from "./memory.ts";
import type { RegisterMap } from "./register-map.ts";

export interface RequestInfo {
  functionCode: number;
  address: number;
  quantity: number;
}

export const EXCEPTION = {
  illegalFunction: 1,
  illegalAddress: 2,
  illegalValue: 3,
  gatewayTargetFailed: 0x0b,
} as const;

const WORD_READ = new Set([3, 4]);
const BIT_READ = new Set([1, 2]);
const RANGED = new Set([1, 2, 3, 4, 15, 16, 23]);

/** Function code, start address and quantity, as far as the PDU carries them. */
export function describeRequest(pdu: Buffer): RequestInfo {
  const functionCode = pdu[0] ?? 0;
  if (RANGED.has(functionCode) && pdu.length >= 5) {
    return { functionCode, address: pdu.readUInt16BE(1), quantity: pdu.readUInt16BE(3) };
  }
  if ((functionCode === 5 || functionCode === 6) && pdu.length >= 3) {
    return { functionCode, address: pdu.readUInt16BE(1), quantity: 1 };
  }
  return { functionCode, address: 0, quantity: 0 };
}

export function exceptionPdu(functionCode: number, code: number): Buffer {
  return Buffer.from([(functionCode | 0x80) & 0xff, code]);
}

export function executeRequest(
  memory: Memory,
  unit: number,
  pdu: Buffer,
  map?: RegisterMap,
): Buffer {
  const fc = pdu[0] ?? 0;
  const fail = (code: number) => exceptionPdu(fc, code);
  if (BIT_READ.has(fc) || WORD_READ.has(fc)) {
    if (pdu.length !== 5) return fail(EXCEPTION.illegalValue);
    const address = pdu.readUInt16BE(1);
    const quantity = pdu.readUInt16BE(3);
    const max = BIT_READ.has(fc) ? 2000 : 125;
    if (quantity < 1 || quantity > max) return fail(EXCEPTION.illegalValue);
    if (address + quantity > 65_536) return fail(EXCEPTION.illegalAddress);
    const refused = map?.refuse(fc, address, quantity);
    if (refused !== undefined) return fail(refused);
    const tables = memory.read(unit);
    if (fc === 1) return readBits(fc, tables.coil, address, quantity);
    if (fc === 2) return readBits(fc, tables.discrete_input, address, quantity);
    return readWords(
      fc,
      fc === 3 ? tables.holding_register : tables.input_register,
      address,
      quantity,
    );
  }
  if (fc === 5 || fc === 6) {
    if (pdu.length !== 5) return fail(EXCEPTION.illegalValue);
    const address = pdu.readUInt16BE(1);
    const value = pdu.readUInt16BE(3);
    const refused = map?.refuse(fc, address, 1);
    if (refused !== undefined) return fail(refused);
    if (fc === 5) {
      if (value !== 0xff00 && value !== 0) return fail(EXCEPTION.illegalValue);
      memory.write(unit).coil[address] = value === 0 ? 0 : 1;
    } else {
      memory.write(unit).holding_register[address] = value;
    }
    return Buffer.from(pdu);
  }
  if (fc === 15 || fc === 16) return writeMultiple(memory, unit, pdu, map);
  if (fc === 23) return readWriteMultiple(memory, unit, pdu, map);
  return fail(EXCEPTION.illegalFunction);
}

/** A read reply PDU carrying these words (3, 4) or 0/1 bits (1, 2), for unsolicited frames. */
export function readReplyPdu(fc: 1 | 2 | 3 | 4, values: readonly number[]): Buffer {
  if (fc === 1 || fc === 2)
    return readBits(
      fc,
      Uint8Array.from(values, (v) => (v ? 1 : 0)),
      0,
      values.length,
    );
  return readWords(fc, Uint16Array.from(values), 0, values.length);
}

function readBits(fc: number, bits: Uint8Array, address: number, quantity: number): Buffer {
  const count = Math.ceil(quantity / 8);
  const out = Buffer.alloc(2 + count);
  out[0] = fc;
  out[1] = count;
  for (let i = 0; i < quantity; i++) {
    if (bits[address + i] === 1) out[2 + (i >> 3)]! |= 1 << (i & 7);
  }
  return out;
}

function readWords(fc: number, words: Uint16Array, address: number, quantity: number): Buffer {
  const out = Buffer.allocUnsafe(2 + 2 * quantity);
  out[0] = fc;
  out[1] = 2 * quantity;
  for (let i = 0; i < quantity; i++) out.writeUInt16BE(words[address + i]!, 2 + 2 * i);
  return out;
}

function writeMultiple(memory: Memory, unit: number, pdu: Buffer, map?: RegisterMap): Buffer {
  const fc = pdu[0]!;
  if (pdu.length < 6) return exceptionPdu(fc, EXCEPTION.illegalValue);
  const address = pdu.readUInt16BE(1);
  const quantity = pdu.readUInt16BE(3);
  const byteCount = pdu[5]!;
  const coils = fc === 15;
  const max = coils ? 1968 : 123;
  const expected = coils ? Math.ceil(quantity / 8) : 2 * quantity;
  if (quantity < 1 || quantity > max || byteCount !== expected || pdu.length !== 6 + byteCount) {
    return exceptionPdu(fc, EXCEPTION.illegalValue);
  }
  if (address + quantity > 65_536) return exceptionPdu(fc, EXCEPTION.illegalAddress);
  const refused = map?.refuse(fc, address, quantity);
  if (refused !== undefined) return exceptionPdu(fc, refused);
  const tables = memory.write(unit);
  writeData(tables, coils, address, quantity, pdu.subarray(6));
  return Buffer.from(pdu.subarray(0, 5));
}

function writeData(
  tables: UnitTables,
  coils: boolean,
  address: number,
  quantity: number,
  data: Buffer,
): void {
  for (let i = 0; i < quantity; i++) {
    if (coils) tables.coil[address + i] = (data[i >> 3]! >> (i & 7)) & 1;
    else tables.holding_register[address + i] = data.readUInt16BE(2 * i);
  }
}

function readWriteMultiple(memory: Memory, unit: number, pdu: Buffer, map?: RegisterMap): Buffer {
  const fail = (code: number) => exceptionPdu(23, code);
  if (pdu.length < 10) return fail(EXCEPTION.illegalValue);
  const readAddress = pdu.readUInt16BE(1);
  const readQuantity = pdu.readUInt16BE(3);
  const writeAddress = pdu.readUInt16BE(5);
  const writeQuantity = pdu.readUInt16BE(7);
  const byteCount = pdu[9]!;
  if (
    readQuantity < 1 ||
    readQuantity > 125 ||
    writeQuantity < 1 ||
    writeQuantity > 121 ||
    byteCount !== 2 * writeQuantity ||
    pdu.length !== 10 + byteCount
  ) {
    return fail(EXCEPTION.illegalValue);
  }
  if (readAddress + readQuantity > 65_536 || writeAddress + writeQuantity > 65_536) {
    return fail(EXCEPTION.illegalAddress);
  }
  const refused =
    map?.refuse(23, readAddress, readQuantity) ?? map?.refuse(16, writeAddress, writeQuantity);
  if (refused !== undefined) return fail(refused);
  const tables = memory.write(unit);
  writeData(tables, false, writeAddress, writeQuantity, pdu.subarray(10));
  return readWords(23, tables.holding_register, readAddress, readQuantity);
}
