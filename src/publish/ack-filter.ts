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
 * taken. A remaining length that is not a valid variable byte integer, or a PUBACK longer than
 * MAX_PUBACK, turns the filter off for good: mqtt.js gets every byte from there and judges it.
 *
 * Order: a PUBACK of publish()'s ids that goes on to mqtt.js is answered only when mqtt.js
 * parsed it (`passedSeen()`, called by the connection on mqtt.js's `packetreceive`). Until
 * then no PUBACK is taken here either: they all go the same way, so the acknowledgements reach
 * the connection in the broker's order (a refusal never overtaken by a success sent after it).
 *
 * Framing: a packet's start is kept back until its remaining length is known (at most 5
 * bytes), a PUBACK until it is whole; any other packet is passed on as its bytes come. Bytes
 * come through receive(): from the socket's `onread` callback (connection.ts: one buffer the
 * socket reads into again and again, so whatever is kept or passed on is copied) or from its
 * 'data' events. Backpressure: while mqtt.js does not take what was passed on, the socket is
 * paused; bytes passed on before the socket closed still reach mqtt.js before the close.
 *
 * Held reads (issue 12): a broker answers a burst of publishes with its PUBACKs a few at a
 * time, and each read of them woke the gateway: some 1,300 wake-ups a second at 10,000 events
 * a second, each a context switch and a turn of the event loop, about a third of the gateway's
 * CPU. So after a read, while `holdReads()` says PUBACKs are still awaited and nobody is in a
 * hurry for them (connection.ts), the socket is not read for `holdMs`: what arrives meanwhile
 * waits in the kernel and comes in one read. A PUBACK only moves the journal's cursor and frees
 * a place in the window; the publisher asks for one at once when it waits for room (readNow()).
 * Only a socket with `onread` stops reading at pause(); one with 'data' events reads on.
 */
import { Duplex } from "node:stream";
import { FAST_IDS_MAX } from "./publish-packet.ts";

const PUBACK = 0x40;
/** A PUBACK longer than this (reason string, user properties) is beyond what the filter judges. */
const MAX_PUBACK = 65_536;
/** How long a read is held, unless the connection says otherwise (tests: ackHoldMs). */
const HOLD_MS = 4;

export class AckFilter extends Duplex {
  /** Called for each PUBACK taken: its packet id and reason code (0 or 0x10). */
  onAck: ((id: number, reasonCode: number) => void) | undefined;
  readonly #socket: Duplex;
  /** The start of a packet not judged yet. */
  #head: Buffer | undefined;
  /** Bytes of a packet passed on that are still to come. */
  #skip = 0;
  /** A malformed remaining length or an outsize PUBACK was seen: everything goes to mqtt.js. */
  #off = false;
  /** PUBACKs of publish()'s ids passed on to mqtt.js and not parsed by it yet. */
  #passed = 0;
  /** The end of the socket's data was pushed. */
  #eof = false;
  /** Whether to hold the next read: PUBACKs are awaited and nobody waits for them. */
  holdReads: (() => boolean) | undefined;
  readonly #holdMs: number;
  /** Set while reads are held. */
  #hold: NodeJS.Timeout | undefined;
  /** mqtt.js took nothing more: the socket waits for its next _read(). */
  #backpressure = false;

  constructor(socket: Duplex, options: { holdMs?: number } = {}) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#holdMs = options.holdMs ?? HOLD_MS;
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("end", () => this.#end());
    socket.on("error", (err) => this.destroy(err));
    socket.on("close", () => {
      if (this.destroyed) return; // closed from this side (_destroy)
      // what mqtt.js has not read yet still reaches it (a DISCONNECT's reason, a refusal)
      if (this.readableLength === 0 || this.readableEnded) {
        this.destroy();
        return;
      }
      this.once("end", () => this.destroy());
      this.#end();
    });
  }

  /** mqtt.js parsed a PUBACK of publish()'s ids that the filter passed on. */
  passedSeen(): void {
    if (this.#passed > 0) this.#passed--;
  }

  /** Reads the socket at once, ending a hold (someone waits for a PUBACK). */
  readNow(): void {
    if (this.#hold === undefined) return;
    clearTimeout(this.#hold);
    this.#hold = undefined;
    this.#flow();
  }

  override _read(): void {
    this.#backpressure = false;
    this.#flow();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void) {
    this.#socket.write(chunk, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.#socket.end(() => done());
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    clearTimeout(this.#hold);
    this.#hold = undefined;
    // the socket's own error listener (connection.ts) learns why: mqtt-packet destroys the
    // stream with the reason when it cannot encode a packet
    this.#socket.destroy(err ?? undefined);
    done(err);
  }

  #end(): void {
    if (this.#eof) return;
    this.#eof = true;
    this.push(null);
  }

  /** The socket reads unless mqtt.js is full or reads are held. */
  #flow(): void {
    if (this.#backpressure || this.#hold !== undefined) this.#socket.pause();
    else this.#socket.resume();
  }

  /** Passes `bytes` on to mqtt.js: a copy, never the socket's buffer (it is read into again). */
  #pass(bytes: Buffer): void {
    if (!this.push(bytes)) {
      this.#backpressure = true;
      this.#flow();
    }
  }

  /** After a read: hold the next one while PUBACKs are awaited and nobody is in a hurry. */
  #holdNext(): void {
    if (this.#hold !== undefined || this.destroyed || this.holdReads?.() !== true) return;
    this.#hold = setTimeout(() => {
      this.#hold = undefined;
      this.#flow();
    }, this.#holdMs);
    this.#flow();
  }

  /** Bytes read from the socket; used only during the call (the buffer may be read into again). */
  receive(chunk: Buffer): void {
    this.#take(chunk);
    this.#holdNext();
  }

  #take(chunk: Buffer): void {
    // nothing is kept back here: a packet start is kept only while judging, and the filter
    // turns off inside a read, after it took what was kept
    if (this.#off || this.onAck === undefined) {
      this.#pass(Buffer.from(chunk));
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
      if (header === INCOMPLETE) {
        this.#head = Buffer.from(data.subarray(at));
        break;
      }
      if (header === MALFORMED || (data[at] === PUBACK && header.length > MAX_PUBACK)) {
        this.#off = true;
        break;
      }
      const { length, body } = header;
      if (data[at] === PUBACK && length >= 2) {
        if (body + length > data.length) {
          this.#head = Buffer.from(data.subarray(at));
          break;
        }
        const id = data.readUInt16BE(body);
        if (id >= 1 && id <= FAST_IDS_MAX) {
          const code = length === 3 ? data[body + 2]! : 0;
          const plain = length === 2 || (length === 3 && (code === 0 || code === 0x10));
          if (plain && this.#passed === 0) {
            if (at > from) out.push(data.subarray(from, at));
            at = body + length;
            from = at;
            this.onAck?.(id, code);
            continue;
          }
          this.#passed++; // mqtt.js judges it; the ones after it go the same way until then
        }
        at = body + length;
        continue;
      }
      at = body;
      this.#skip = length;
    }
    const end = this.#head === undefined ? data.length : data.length - this.#head.length;
    if (end > from) out.push(data.subarray(from, end));
    if (out.length === 1) this.#pass(Buffer.from(out[0]!));
    else if (out.length > 1) this.#pass(Buffer.concat(out));
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
