/**
 * Modbus TCP (MBAP) frames of the four read functions (Modbus Messaging on TCP/IP
 * Implementation Guide V1.0b, section 3.1.3): the request the gateway sends, the cut of one
 * frame off the received bytes, and the check of a reply when transaction ids cannot be
 * trusted (a device that does not echo them).
 *
 * Invariants:
 * - A frame is 6 + length bytes; a length outside 2..254 can never be resynchronised: the
 *   stream must be reset ("fatal").
 * - The protocol id is not checked (some devices send garbage there; it cannot carry another
 *   request's value, the transaction id, unit and byte count decide).
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

export const MBAP_HEADER = 7;

export function mbapRequestFrame(tid: number, request: ReadRequest): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt16BE(tid, 0);
  out.writeUInt16BE(0, 2);
  out.writeUInt16BE(6, 4);
  out[6] = request.unitId;
  out[7] = FUNCTION_OF[request.table];
  out.writeUInt16BE(request.start, 8);
  out.writeUInt16BE(request.count, 10);
  return out;
}

export type MbapCut =
  | { kind: "need" }
  | { kind: "fatal"; reason: string }
  | { kind: "frame"; size: number; tid: number; unit: number; pdu: Buffer };

/** Cuts the first frame off `buf` (which starts at a frame boundary). */
export function cutMbapFrame(buf: Buffer): MbapCut {
  if (buf.length < MBAP_HEADER) return { kind: "need" };
  const length = buf.readUInt16BE(4);
  if (length < 2 || length > 254) {
    return { kind: "fatal", reason: `MBAP length ${length} outside 2..254` };
  }
  const size = 6 + length;
  if (buf.length < size) return { kind: "need" };
  return {
    kind: "frame",
    size,
    tid: buf.readUInt16BE(0),
    unit: buf[6]!,
    pdu: buf.subarray(MBAP_HEADER, size),
  };
}

/** Checks a frame's unit and PDU against the reply asked for; the PDU must fill the frame. */
export function checkMbapPdu(unit: number, pdu: Buffer, expected: ExpectedReply): ReplyCheck {
  if (unit !== expected.unit) return unitMismatch(unit, expected.unit);
  const check = checkPdu(pdu, expected);
  if (check.kind === "need") {
    return {
      kind: "mismatch",
      reason: `reply cut short: its MBAP frame holds ${pdu.length} PDU bytes, expected ${2 + expected.byteCount}`,
    };
  }
  if (check.kind !== "mismatch" && check.size !== pdu.length) {
    return { kind: "mismatch", reason: "unexpected bytes after the reply in its MBAP frame" };
  }
  return check;
}

/**
 * A reply on a line without trusted transaction ids: the bytes received since the request,
 * whatever transaction id they carry, must be exactly one frame from the unit asked, with the
 * function and byte count asked for.
 */
export function checkMbapLineReply(buf: Buffer, expected: ExpectedReply): ReplyCheck {
  if (buf.length >= MBAP_HEADER && buf[6] !== expected.unit) {
    return unitMismatch(buf[6]!, expected.unit);
  }
  const cut = cutMbapFrame(buf);
  if (cut.kind === "need") return NEED_MORE;
  if (cut.kind === "fatal") return { kind: "mismatch", reason: cut.reason };
  const check = checkMbapPdu(cut.unit, cut.pdu, expected);
  if (check.kind === "reply" || check.kind === "exception") return { ...check, size: cut.size };
  return check;
}
