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

/**
 * Readings already handed out that a frame nobody asked for has put in doubt (see
 * line-guard.ts): the requests whose replies were accepted since the line was last quiet.
 * They are the very objects given to read(), so the caller knows which tags they carried.
 */
export type DoubtListener = (requests: readonly ReadRequest[], reason: string) => void;

export interface ModbusLink {
  readonly isOpen: boolean;
  /** Where the link goes, for messages: "10.0.0.5:502" or "/dev/ttyUSB0". */
  readonly peer: string;
  /** Registers as uint16 words, or coils and discrete inputs as 0/1. */
  read(request: ReadRequest, timeoutMs: number, signal?: AbortSignal): Promise<number[]>;
  /** Called once when the link closes, whoever closed it. */
  onClose(listener: (reason: string) => void): void;
  /** Called when readings already accepted are put in doubt (links without ids only). */
  onDoubt(listener: DoubtListener): void;
  close(): Promise<void>;
}

/** What a correct reply to a read request looks like, whatever its framing. */
export interface ExpectedReply {
  unit: number;
  functionCode: 1 | 2 | 3 | 4;
  /** Data bytes of a correct reply. */
  byteCount: number;
}

export type ReplyCheck =
  /** Nothing wrong so far; more bytes are needed. */
  | { kind: "need" }
  | { kind: "reply"; size: number; data: Buffer }
  | { kind: "exception"; size: number; code: number }
  | { kind: "mismatch"; reason: string };

export const NEED_MORE: ReplyCheck = { kind: "need" };

export function expectedReply(request: ReadRequest): ExpectedReply {
  return {
    unit: request.unitId,
    functionCode: FUNCTION_OF[request.table],
    byteCount: replyByteCount(request),
  };
}

/** The words (registers) or 0/1 bits of a reply's data bytes. */
export function replyValues(request: ReadRequest, data: Buffer): number[] {
  if (!isBitRequest(request)) {
    return Array.from({ length: request.count }, (_, i) => data.readUInt16BE(2 * i));
  }
  return Array.from({ length: request.count }, (_, i) => (data[i >> 3]! >> (i & 7)) & 1);
}

/**
 * Checks a reply's PDU (function code onwards) against the reply asked for: an exception of
 * that function, or that function with exactly the byte count asked for. `size` is the PDU's.
 */
export function checkPdu(pdu: Buffer, expected: ExpectedReply): ReplyCheck {
  const { functionCode, byteCount } = expected;
  if (pdu.length < 1) return NEED_MORE;
  const fc = pdu[0]!;
  if (fc === (functionCode | 0x80)) {
    if (pdu.length < 2) return NEED_MORE;
    return { kind: "exception", size: 2, code: pdu[1]! };
  }
  if (fc !== functionCode) {
    return {
      kind: "mismatch",
      reason: `unexpected reply: function ${fc}, expected ${functionCode}`,
    };
  }
  if (pdu.length < 2) return NEED_MORE;
  if (pdu[1] !== byteCount) {
    return {
      kind: "mismatch",
      reason: `unexpected reply: byte count ${pdu[1]}, expected ${byteCount}`,
    };
  }
  const size = 2 + byteCount;
  if (pdu.length < size) return NEED_MORE;
  return { kind: "reply", size, data: pdu.subarray(2, size) };
}

export function unitMismatch(got: number, unit: number): ReplyCheck {
  return { kind: "mismatch", reason: `unexpected reply from unit ${got} (asked unit ${unit})` };
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
