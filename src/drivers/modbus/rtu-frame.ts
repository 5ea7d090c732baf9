/**
 * Modbus RTU frames of the four read functions (Modbus over Serial Line V1.02, section 2.5):
 * the request the gateway sends, and the strict check of what comes back.
 *
 * Invariants:
 * - A reply is read from the first byte received after the request. No byte is ever skipped
 *   to find a frame further on: bytes that do not start with the unit, function code and byte
 *   count asked for are a mismatch, not noise to step over.
 * - A reply is complete at exactly 5 + byte count bytes (an exception reply at 5) and only
 *   counts when its CRC matches.
 */

/** CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF) over bytes [0, end). */
export function crc16(bytes: Uint8Array, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) {
    crc ^= bytes[i]!;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

export interface ExpectedReply {
  unit: number;
  functionCode: 1 | 2 | 3 | 4;
  /** Data bytes of a correct reply. */
  byteCount: number;
}

/** A read request: unit, function, start, quantity, CRC (low byte first). */
export function readRequestFrame(
  unit: number,
  functionCode: number,
  start: number,
  count: number,
): Buffer {
  const out = Buffer.alloc(8);
  out[0] = unit;
  out[1] = functionCode;
  out.writeUInt16BE(start, 2);
  out.writeUInt16BE(count, 4);
  out.writeUInt16LE(crc16(out, 6), 6);
  return out;
}

export type ReplyCheck =
  /** Nothing wrong so far; more bytes are needed. */
  | { kind: "need" }
  | { kind: "reply"; size: number; data: Buffer }
  | { kind: "exception"; size: number; code: number }
  | { kind: "mismatch"; reason: string };

const NEED: ReplyCheck = { kind: "need" };

/** Checks the bytes received since the request against the reply it asked for. */
export function checkReply(buf: Buffer, expected: ExpectedReply): ReplyCheck {
  const { unit, functionCode, byteCount } = expected;
  if (buf.length < 1) return NEED;
  if (buf[0] !== unit) {
    return {
      kind: "mismatch",
      reason: `unexpected reply from unit ${buf[0]} (asked unit ${unit})`,
    };
  }
  if (buf.length < 2) return NEED;
  const fc = buf[1]!;
  if (fc === (functionCode | 0x80)) {
    if (buf.length < 5) return NEED;
    if (!crcOk(buf, 5)) return { kind: "mismatch", reason: "exception reply failed its CRC check" };
    return { kind: "exception", size: 5, code: buf[2]! };
  }
  if (fc !== functionCode) {
    return {
      kind: "mismatch",
      reason: `unexpected reply: function ${fc}, expected ${functionCode}`,
    };
  }
  if (buf.length < 3) return NEED;
  if (buf[2] !== byteCount) {
    return {
      kind: "mismatch",
      reason: `unexpected reply: byte count ${buf[2]}, expected ${byteCount}`,
    };
  }
  const size = 5 + byteCount;
  if (buf.length < size) return NEED;
  if (!crcOk(buf, size)) return { kind: "mismatch", reason: "reply failed its CRC check" };
  return { kind: "reply", size, data: buf.subarray(3, 3 + byteCount) };
}

function crcOk(buf: Buffer, size: number): boolean {
  return buf.readUInt16LE(size - 2) === crc16(buf, size - 2);
}
