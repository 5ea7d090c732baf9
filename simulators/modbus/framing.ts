/**
 * Request framing: cuts MBAP (Modbus TCP) or RTU (unit, PDU, CRC) requests out of a byte
 * stream that may hold several requests or part of one, and frames responses.
 *
 * MBAP: a length outside 2..254 cannot be resynchronised: the connection must close
 * ("fatal"); a protocol id other than 0 skips the frame. RTU: the request length follows
 * from the function code (1-6: 8 bytes; 15, 16: 9 + byte count; 23: 13 + byte count); for
 * other function codes the frame ends where a CRC matches. A frame whose CRC is wrong is
 * skipped whole and never answered, as on a real bus.
 */
import { crc16, crcMatches } from "./crc.ts";

export interface RequestFrame {
  /** MBAP transaction id; 0 for RTU. */
  tid: number;
  unit: number;
  pdu: Buffer;
}

export type Extracted =
  | { kind: "frame"; frame: RequestFrame; size: number }
  | { kind: "need" }
  | { kind: "skip"; size: number }
  | { kind: "fatal"; reason: string };

const NEED: Extracted = { kind: "need" };
const MAX_RTU_ADU = 256;

export function extractMbap(buf: Buffer): Extracted {
  if (buf.length < 7) return NEED;
  const protocol = buf.readUInt16BE(2);
  const length = buf.readUInt16BE(4);
  if (length < 2 || length > 254) {
    return { kind: "fatal", reason: `MBAP length ${length} outside 2..254` };
  }
  const size = 6 + length;
  if (buf.length < size) return NEED;
  if (protocol !== 0) return { kind: "skip", size };
  const frame = { tid: buf.readUInt16BE(0), unit: buf[6]!, pdu: buf.subarray(7, size) };
  return { kind: "frame", frame, size };
}

function rtuLength(buf: Buffer): number | undefined {
  const fc = buf[1]!;
  if (fc >= 1 && fc <= 6) return 8;
  if (fc === 15 || fc === 16) return buf.length < 7 ? -1 : 9 + buf[6]!;
  if (fc === 23) return buf.length < 11 ? -1 : 13 + buf[10]!;
  return undefined;
}

export function extractRtu(buf: Buffer): Extracted {
  if (buf.length < 4) return NEED;
  const known = rtuLength(buf);
  if (known === -1) return NEED;
  if (known !== undefined) {
    if (buf.length < known) return NEED;
    if (!crcMatches(buf, 0, known)) return { kind: "skip", size: known };
    return rtuFrame(buf, known);
  }
  const limit = Math.min(buf.length, MAX_RTU_ADU);
  for (let size = 4; size <= limit; size++) {
    if (crcMatches(buf, 0, size)) return rtuFrame(buf, size);
  }
  return buf.length >= MAX_RTU_ADU ? { kind: "skip", size: 1 } : NEED;
}

function rtuFrame(buf: Buffer, size: number): Extracted {
  return { kind: "frame", frame: { tid: 0, unit: buf[0]!, pdu: buf.subarray(1, size - 2) }, size };
}

export function frameMbap(tid: number, unit: number, pdu: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(7 + pdu.length);
  out.writeUInt16BE(tid & 0xffff, 0);
  out.writeUInt16BE(0, 2);
  out.writeUInt16BE((pdu.length + 1) & 0xffff, 4);
  out[6] = unit;
  out.set(pdu, 7);
  return out;
}

export function frameRtu(unit: number, pdu: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(3 + pdu.length);
  out[0] = unit;
  out.set(pdu, 1);
  const crc = crc16(out, 0, out.length - 2);
  out[out.length - 2] = crc & 0xff;
  out[out.length - 1] = crc >>> 8;
  return out;
}
