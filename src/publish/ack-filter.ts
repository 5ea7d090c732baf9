/**
 * The stream between the broker's socket and mqtt.js that takes the hot path's PUBACKs off it
 * (issue 12): mqtt.js parsed each one through a buffer list, a packet object, a queue turn and
 * several debug() calls, about 2 KB of garbage and a tenth of the gateway's CPU per event at
 * 10,000 events/s. Here a plain success PUBACK of one of publish()'s packet ids is read in
 * place and handed to `onAck`; every other byte goes on to mqtt.js, unchanged and in order.
 *
 * What is taken: a PUBACK (fixed header 0x40) with a remaining length of 2 (MQTT 3.1.1, and
 * MQTT 5 success with no reason code) or 3 with reason code 0x00 (Success) or 0x10 (No matching
 * subscribers), and a packet id in 1..FAST_IDS_MAX (publish-packet.ts). Everything else, a
 * refusal among them (reason code 0x80 and up, or any PUBACK with properties), reaches mqtt.js
 * as before and is judged there. Until `onAck` is set (the connection is up), nothing is
 * taken. A remaining length that is not a valid variable byte integer turns the filter off for
 * good: mqtt.js gets every byte from there and reports the malformed packet.
 *
 * Framing: a packet's start is kept back until its remaining length is known (at most 5
 * bytes), a candidate PUBACK until it is whole (at most 5 bytes); any other packet is passed
 * on as its bytes come, without copying.
 */
import { Duplex } from "node:stream";
import { FAST_IDS_MAX } from "./publish-packet.ts";

const PUBACK = 0x40;

export class AckFilter extends Duplex {
  /** Called for each PUBACK taken: its packet id and reason code (0 or 0x10). */
  onAck: ((id: number, reasonCode: number) => void) | undefined;
  readonly #socket: Duplex;
  /** The start of a packet not judged yet. */
  #head: Buffer | undefined;
  /** Bytes of a packet passed on that are still to come. */
  #skip = 0;
  /** A malformed remaining length was seen: everything goes to mqtt.js. */
  #off = false;

  constructor(socket: Duplex) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    socket.on("end", () => this.push(null));
    socket.on("error", (err) => this.destroy(err));
    socket.on("close", () => this.destroy());
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void) {
    this.#socket.write(chunk, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.#socket.end(() => done());
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    this.#socket.destroy();
    done(err);
  }

  #receive(chunk: Buffer): void {
    if (this.#off || this.onAck === undefined) {
      this.#flushHead();
      this.push(chunk);
      return;
    }
    const data = this.#head === undefined ? chunk : Buffer.concat([this.#head, chunk]);
    this.#head = undefined;
    let at = 0;
    let from = 0; // start of the bytes still to pass on
    const out: Buffer[] = [];
    while (at < data.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, data.length - at);
        at += n;
        this.#skip -= n;
        continue;
      }
      const header = remainingLength(data, at + 1);
      if (header === MALFORMED) {
        this.#off = true;
        break;
      }
      if (header === INCOMPLETE) {
        this.#head = data.subarray(at);
        break;
      }
      const { length, body } = header;
      if (data[at] === PUBACK && (length === 2 || length === 3)) {
        if (body + length > data.length) {
          this.#head = data.subarray(at);
          break;
        }
        const id = data.readUInt16BE(body);
        const code = length === 3 ? data[body + 2]! : 0;
        if (id >= 1 && id <= FAST_IDS_MAX && (code === 0 || code === 0x10)) {
          if (at > from) out.push(data.subarray(from, at));
          at = body + length;
          from = at;
          this.onAck?.(id, code);
          continue;
        }
      }
      at = body;
      this.#skip = length;
    }
    const end = this.#head === undefined ? data.length : data.length - this.#head.length;
    if (end > from) out.push(data.subarray(from, end));
    if (out.length === 1) this.push(out[0]);
    else if (out.length > 1) this.push(Buffer.concat(out));
  }

  /** Passes on a packet start kept back (the filter was turned off meanwhile). */
  #flushHead(): void {
    if (this.#head === undefined) return;
    this.push(this.#head);
    this.#head = undefined;
  }
}

const INCOMPLETE = 0;
const MALFORMED = 1;

/** The remaining length (MQTT 1.5.5) starting at `at`, and where the packet's body starts. */
function remainingLength(
  data: Buffer,
  at: number,
): { length: number; body: number } | typeof INCOMPLETE | typeof MALFORMED {
  let length = 0;
  let factor = 1;
  for (let i = 0; i < 4; i++) {
    if (at + i >= data.length) return INCOMPLETE;
    const byte = data[at + i]!;
    length += (byte & 0x7f) * factor;
    if (byte < 0x80) return { length, body: at + i + 1 };
    factor *= 128;
  }
  return MALFORMED;
}
