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
import {
  checkPdu,
  type ExpectedReply,
  FUNCTION_OF,
  NEED_MORE,
  type ReadRequest,
  type ReplyCheck,
  unitMismatch,
} from "./request.ts";

/** CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF) over bytes [0, end). */
export function crc16(bytes: Uint8Array, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) {
    crc ^= bytes[i]!;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** A read request: unit, function, start, quantity, CRC (low byte first). */
export function rtuRequestFrame(request: ReadRequest): Buffer {
  const out = Buffer.alloc(8);
  out[0] = request.unitId;
  out[1] = FUNCTION_OF[request.table];
  out.writeUInt16BE(request.start, 2);
  out.writeUInt16BE(request.count, 4);
  out.writeUInt16LE(crc16(out, 6), 6);
  return out;
}

/** Checks the bytes received since the request against the reply it asked for. */
export function checkRtuReply(buf: Buffer, expected: ExpectedReply): ReplyCheck {
  if (buf.length < 1) return NEED_MORE;
  if (buf[0] !== expected.unit) return unitMismatch(buf[0]!, expected.unit);
  const pdu = checkPdu(buf.subarray(1), expected);
  if (pdu.kind === "need" || pdu.kind === "mismatch") return pdu;
  const size = 1 + pdu.size + 2;
  if (buf.length < size) return NEED_MORE;
  if (buf.readUInt16LE(size - 2) !== crc16(buf, size - 2)) {
    const what = pdu.kind === "exception" ? "exception reply" : "reply";
    return { kind: "mismatch", reason: `${what} failed its CRC check` };
  }
  return { ...pdu, size };
}
