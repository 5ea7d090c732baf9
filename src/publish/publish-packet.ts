/**
 * The journal's hot path to the broker, below mqtt.js: QoS 1 PUBLISH packets encoded here, in
 * one buffer per burst, written straight to the connection's socket, their PUBACKs taken off
 * mqtt.js's packet stream (issue 12: mqtt.js's publish() cost 14 us per event, half the budget
 * of the whole gateway, and wrote each packet with a syscall of its own). mqtt.js keeps all the
 * rest: CONNECT and the will, keep alive, SUBSCRIBE, DISCONNECT, and the status messages.
 *
 * Invariants:
 * - Packet ids: this path uses 1..FAST_IDS_MAX; mqtt.js allocates from the ids above it
 *   (ReservedIdProvider), so an acknowledgement is never taken by the wrong side. mqtt.js
 *   ignores a PUBACK whose id it did not send.
 * - An id is reused only after its PUBACK arrived or the connection closed (every waiting
 *   publish is then rejected): never two packets in flight under one id.
 * - The encoding follows MQTT 5.0 section 3.3 (and 3.1.1 for protocol level 4: no properties):
 *   fixed header 0x32 (retain: 0x33), remaining length as a variable byte integer, topic as a
 *   UTF-8 string, packet id, (v5) an empty property list, payload.
 * - Packets of one burst (one tick) go out in one write, in the order publish() was called.
 */

/** The packet ids this path owns; mqtt.js takes the rest. */
export const FAST_IDS_MAX = 60_000;

/** mqtt.js's message ids, kept above FAST_IDS_MAX. */
export class ReservedIdProvider {
  #next = FAST_IDS_MAX + 1;
  allocate(): number {
    const id = this.#next;
    this.#next = this.#next >= 65_535 ? FAST_IDS_MAX + 1 : this.#next + 1;
    return id;
  }
  getLastAllocated(): number {
    return this.#next === FAST_IDS_MAX + 1 ? 65_535 : this.#next - 1;
  }
  register(_id: number): boolean {
    return true;
  }
  deallocate(_id: number): void {}
  clear(): void {}
}

/** Bytes of a variable byte integer (MQTT 1.5.5). */
function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** The size on the wire of a QoS 1 PUBLISH of `topic` and `payload` (UTF-8 byte lengths). */
export function publishPacketSize(topicBytes: number, payloadBytes: number, version: 4 | 5) {
  const remaining = 2 + topicBytes + 2 + (version === 5 ? 1 : 0) + payloadBytes;
  return 1 + varintLength(remaining) + remaining;
}

/** Encodes a QoS 1 PUBLISH into `out` at `offset`; returns the offset after it. */
export function writePublish(
  out: Buffer,
  offset: number,
  packet: { topic: string; topicBytes: number; payload: string; payloadBytes: number },
  id: number,
  retain: boolean,
  version: 4 | 5,
): number {
  let at = offset;
  out[at++] = retain ? 0x33 : 0x32;
  let remaining = 2 + packet.topicBytes + 2 + (version === 5 ? 1 : 0) + packet.payloadBytes;
  do {
    let byte = remaining & 0x7f;
    remaining >>>= 7;
    if (remaining > 0) byte |= 0x80;
    out[at++] = byte;
  } while (remaining > 0);
  out.writeUInt16BE(packet.topicBytes, at);
  at += 2;
  at += out.write(packet.topic, at, "utf8");
  out.writeUInt16BE(id, at);
  at += 2;
  if (version === 5) out[at++] = 0;
  at += out.write(packet.payload, at, "utf8");
  return at;
}

/** A PUBLISH waiting to go out in the current burst. */
export interface Outgoing {
  topic: string;
  topicBytes: number;
  payload: string;
  payloadBytes: number;
  retain: boolean;
  id: number;
}

/** Encodes a burst into one buffer. */
export function encodeBurst(burst: readonly Outgoing[], version: 4 | 5): Buffer {
  let size = 0;
  for (const p of burst) size += publishPacketSize(p.topicBytes, p.payloadBytes, version);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const p of burst) at = writePublish(out, at, p, p.id, p.retain, version);
  return out;
}
