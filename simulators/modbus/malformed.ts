/**
 * Malformed responses for hostile-response tests. Each kind turns the correct response PDU of
 * a request into the bytes to send instead:
 *
 *   short-frame           the PDU cut to half its length (at least the function code), framed
 *                         consistently (MBAP length / RTU CRC match the short PDU)
 *   wrong-transaction-id  the correct response with transaction id tid ^ 0x8000 (RTU, which has
 *                         no transaction id: the correct response from unit id + 1)
 *   byte-count-mismatch   a well-framed response whose byte count disagrees with the request:
 *                         one register less (or one more when 1 was asked), one byte more of
 *                         bits; writes echo quantity + 1 (15, 16) or value ^ 1 (5, 6)
 *   oversized             300 registers (600 bytes) of data whatever was asked; byte count
 *                         600 & 0xff = 0x58 as an overflowing server would send; MBAP length
 *                         603 so the frame is complete
 *   stall-mid-frame       the first half of the framed response; the link then sends nothing
 *                         more (the connection stays open)
 *   garbage               8..39 seeded random bytes; over MBAP the protocol id is never 0,
 *                         over RTU the CRC never matches, so it can never pass as a response
 */
import { crcMatches } from "./crc.ts";
import { frameMbap, frameRtu } from "./framing.ts";
import type { Rng } from "./rng.ts";
import type { MalformedKind } from "./types.ts";

export interface MalformedInput {
  kind: MalformedKind;
  mbap: boolean;
  tid: number;
  unit: number;
  /** The correct response PDU. */
  pdu: Buffer;
  rng: Rng;
}

export interface MalformedOutput {
  bytes: Buffer;
  /** Send nothing more on this link after these bytes. */
  stall: boolean;
}

const OVERSIZED_BYTES = 600;

export function malformedResponse(input: MalformedInput): MalformedOutput {
  const { kind, mbap, tid, unit, pdu, rng } = input;
  const frame = (p: Buffer, t = tid, u = unit) => (mbap ? frameMbap(t, u, p) : frameRtu(u, p));
  switch (kind) {
    case "short-frame":
      return { bytes: frame(pdu.subarray(0, Math.max(1, pdu.length >> 1))), stall: false };
    case "wrong-transaction-id":
      return {
        bytes: mbap ? frame(pdu, tid ^ 0x8000) : frame(pdu, tid, (unit + 1) & 0xff),
        stall: false,
      };
    case "byte-count-mismatch":
      return { bytes: frame(miscount(pdu)), stall: false };
    case "oversized":
      return { bytes: frame(oversized(pdu)), stall: false };
    case "stall-mid-frame": {
      const full = frame(pdu);
      return { bytes: full.subarray(0, Math.max(1, full.length >> 1)), stall: true };
    }
    case "garbage":
      return { bytes: garbage(mbap, rng), stall: false };
  }
}

function miscount(pdu: Buffer): Buffer {
  const fc = pdu[0]!;
  if ([1, 2, 3, 4, 23].includes(fc) && pdu.length >= 2) {
    let data = pdu.subarray(2);
    if (fc === 1 || fc === 2) data = Buffer.concat([data, Buffer.from([0])]);
    else if (data.length > 2) data = data.subarray(0, data.length - 2);
    else data = Buffer.concat([data, Buffer.from([0, 0])]);
    return Buffer.concat([Buffer.from([fc, data.length & 0xff]), data]);
  }
  const out = Buffer.from(pdu);
  if ((fc === 15 || fc === 16) && out.length >= 5)
    out.writeUInt16BE((out.readUInt16BE(3) + 1) & 0xffff, 3);
  else if ((fc === 5 || fc === 6) && out.length >= 5) out[4]! ^= 1;
  else out[out.length - 1]! ^= 1;
  return out;
}

function oversized(pdu: Buffer): Buffer {
  const source = pdu.length > 2 && pdu[0]! < 0x80 ? pdu.subarray(2) : Buffer.from([0x12, 0x34]);
  const out = Buffer.alloc(2 + OVERSIZED_BYTES);
  out[0] = pdu[0]! & 0x7f;
  out[1] = OVERSIZED_BYTES & 0xff;
  for (let i = 0; i < OVERSIZED_BYTES; i++) out[2 + i] = source[i % source.length]!;
  return out;
}

function garbage(mbap: boolean, rng: Rng): Buffer {
  const out = Buffer.alloc(8 + Math.floor(rng() * 32));
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rng() * 256);
  if (mbap) out[2] = out[2]! | 0x01;
  else if (crcMatches(out, 0, out.length)) out[out.length - 1]! ^= 0xff;
  return out;
}
