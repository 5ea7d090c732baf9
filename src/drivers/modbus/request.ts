/**
 * What every Modbus link shares, whatever its framing: the read request, the link contract,
 * the words that name a request in messages, and the exception names.
 */
import type { ModbusTable } from "../../config/modbus-address.ts";

export interface ReadRequest {
  unitId: number;
  table: ModbusTable;
  start: number;
  count: number;
}

export interface ModbusLink {
  readonly isOpen: boolean;
  /** Where the link goes, for messages: "10.0.0.5:502" or "/dev/ttyUSB0". */
  readonly peer: string;
  /** Registers as uint16 words, or coils and discrete inputs as 0/1. */
  read(request: ReadRequest, timeoutMs: number, signal?: AbortSignal): Promise<number[]>;
  /** Called once when the link closes, whoever closed it. */
  onClose(listener: (reason: string) => void): void;
  close(): Promise<void>;
}

/** Modbus exception codes (Modbus Application Protocol V1.1b3, section 7). */
const EXCEPTION_NAMES: Record<number, string> = {
  1: "illegal function",
  2: "illegal data address",
  3: "illegal data value",
  4: "server device failure",
  5: "acknowledge",
  6: "server device busy",
  8: "memory parity error",
  10: "gateway path unavailable",
  11: "gateway target device failed to respond",
};

export const FUNCTION_OF: Record<ModbusTable, 1 | 2 | 3 | 4> = {
  coil: 1,
  discrete_input: 2,
  holding_register: 3,
  input_register: 4,
};

const TABLE_WORD: Record<ModbusTable, string> = {
  coil: "coils",
  discrete_input: "discrete inputs",
  holding_register: "holding",
  input_register: "input",
};

export function exceptionName(code: number): string {
  return EXCEPTION_NAMES[code] ?? "unknown exception";
}

export function describeRequest(request: ReadRequest, peer: string): string {
  return `read ${TABLE_WORD[request.table]} ${request.start}+${request.count} on unit ${request.unitId} at ${peer}`;
}

export function isBitRequest(request: ReadRequest): boolean {
  return request.table === "coil" || request.table === "discrete_input";
}

/** The data bytes a correct reply carries: 2 per register, 1 per 8 bits. */
export function replyByteCount(request: ReadRequest): number {
  return isBitRequest(request) ? Math.ceil(request.count / 8) : 2 * request.count;
}
