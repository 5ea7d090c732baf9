/**
 * One client link (a TCP connection, or the serial port): cuts requests out of the incoming
 * bytes, records each one, applies faults, executes it and writes the response. Responses are
 * written synchronously, in request order, unless a delay fault holds one back (others are not
 * held behind it). Unit ids that do not answer: TCP gets exception 0x0B, RTU gets silence (as
 * on a real bus); unit 0 over RTU is a broadcast: writes apply, nothing is answered. After a
 * stall-mid-frame fault the link sends nothing more. A link sends nothing after close().
 *
 * How a reply's bytes go out (faults.ts): `delay` (and the turnaround) holds the whole reply
 * back; `torn` writes the first half of the frame, then the rest `pauseMs` later; `duplicate`
 * writes the whole frame again after the last piece (afterMs 0: in the same tick, back to
 * back; "held": the copy waits for releaseHeld()); `hold` keeps it until releaseHeld(), which
 * sends it in that shape at once; a
 * transaction id quirk (MBAP) frames it under another id. inject() writes a well-formed read
 * reply no request asked for, in this link's framing.
 */

import { type FaultDecision, type Faults, quirkyTransactionId } from "./faults.ts";
import {
  type Extracted,
  extractMbap,
  extractRtu,
  frameMbap,
  frameRtu,
  type RequestFrame,
} from "./framing.ts";
import { malformedResponse } from "./malformed.ts";
import type { Memory } from "./memory.ts";
import { describeRequest, EXCEPTION, exceptionPdu, executeRequest, readReplyPdu } from "./pdu.ts";
import type { RegisterMap } from "./register-map.ts";
import type { Rng } from "./rng.ts";
import type { InjectedReply, RequestRecord, Transport } from "./types.ts";

export interface LinkContext {
  memory: Memory;
  /** Holes and smaller request sizes of the simulated device (register-map.ts). */
  map?: RegisterMap;
  faults: Faults;
  record(request: RequestRecord): void;
  answers(unit: number): boolean;
  /** For garbage responses. */
  rng: Rng;
}

export interface LinkIo {
  write(bytes: Buffer): void;
  /** Closes the connection (a drop fault or an unrecoverable MBAP header). */
  destroy(): void;
  cork?(): void;
  uncork?(): void;
}

const EMPTY = Buffer.alloc(0);
/** How a held copy goes out on releaseHeld(): at once, whole, once. */
const PLAIN: FaultDecision = { delayMs: 0, action: undefined };

export class Link {
  readonly #ctx: LinkContext;
  readonly #transport: Transport;
  readonly #io: LinkIo;
  readonly #extract: (buf: Buffer) => Extracted;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #held: { bytes: Buffer; stall: boolean; decision: FaultDecision }[] = [];
  /** While the first piece of a torn frame is out: what else is sent waits for its rest. */
  #tornOpen: { bytes: Buffer; stall: boolean }[] | undefined;
  #buffer: Buffer = EMPTY;
  #stalled = false;
  #closed = false;

  constructor(ctx: LinkContext, transport: Transport, io: LinkIo) {
    this.#ctx = ctx;
    this.#transport = transport;
    this.#io = io;
    this.#extract = transport === "tcp" ? extractMbap : extractRtu;
  }

  receive(chunk: Buffer): void {
    if (this.#closed) return;
    const buf = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let pos = 0;
    this.#io.cork?.();
    try {
      while (!this.#closed && pos < buf.length) {
        const cut = this.#extract(buf.subarray(pos));
        if (cut.kind === "need") break;
        if (cut.kind === "fatal") {
          this.#drop();
          return;
        }
        pos += cut.size;
        if (cut.kind === "frame") this.#handle(cut.frame);
      }
    } finally {
      this.#io.uncork?.();
    }
    this.#buffer = pos >= buf.length ? EMPTY : Buffer.from(buf.subarray(pos));
  }

  /** Writes a reply frame nobody asked for (an unsolicited frame); false once closed. */
  inject(reply: InjectedReply): boolean {
    if (this.#closed || this.#stalled) return false;
    const pdu = readReplyPdu(reply.functionCode, reply.values);
    const bytes =
      this.#transport === "tcp"
        ? frameMbap(reply.transactionId ?? 0, reply.unitId, pdu)
        : frameRtu(reply.unitId, pdu);
    this.#write(bytes, false);
    return true;
  }

  /** Sends the replies a hold fault kept, now; returns how many. */
  releaseHeld(): number {
    const held = this.#held.splice(0);
    for (const { bytes, stall, decision } of held) {
      this.#send(bytes, stall, { ...decision, delayMs: 0, hold: false });
    }
    return this.#closed ? 0 : held.length;
  }

  /** Stops all output and pending delayed responses. */
  close(): void {
    this.#closed = true;
    this.#held.length = 0;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#buffer = EMPTY;
  }

  #drop(): void {
    this.close();
    this.#io.destroy();
  }

  #handle(frame: RequestFrame): void {
    const { memory, faults } = this.#ctx;
    const rtu = this.#transport !== "tcp";
    const request: RequestRecord = {
      unitId: frame.unit,
      ...describeRequest(frame.pdu),
      transport: this.#transport,
      ...(rtu ? {} : { transactionId: frame.tid }),
    };
    this.#ctx.record(request);
    const answers = this.#ctx.answers(frame.unit);
    if (rtu && !answers) return;
    const decision = faults.decide(request);
    const { action } = decision;
    if (action?.kind === "drop") {
      if (this.#transport !== "serial") this.#drop();
      return;
    }
    if (action?.kind === "silence") return;
    let pdu: Buffer;
    if (action?.kind === "exception") pdu = exceptionPdu(request.functionCode, action.code);
    else if (!answers) pdu = exceptionPdu(request.functionCode, EXCEPTION.gatewayTargetFailed);
    else pdu = executeRequest(memory, frame.unit, frame.pdu, this.#ctx.map);
    if (rtu && frame.unit === 0) return;
    const quirk = decision.transactionId;
    const replyTid = quirk === undefined ? frame.tid : quirkyTransactionId(quirk, frame.tid);
    if (action?.kind === "malformed") {
      const out = malformedResponse({
        kind: action.malformed,
        mbap: !rtu,
        tid: replyTid,
        unit: frame.unit,
        pdu,
        rng: this.#ctx.rng,
      });
      this.#send(out.bytes, out.stall, decision);
      return;
    }
    const bytes = rtu ? frameRtu(frame.unit, pdu) : frameMbap(replyTid, frame.unit, pdu);
    this.#send(bytes, false, decision);
  }

  #send(bytes: Buffer, stall: boolean, decision: FaultDecision): void {
    if (decision.hold) {
      this.#held.push({ bytes, stall, decision });
      return;
    }
    const { delayMs, tornPauseMs, duplicateAfterMs } = decision;
    const cut = bytes.length >> 1;
    const pieces =
      tornPauseMs === undefined || cut === 0
        ? [bytes]
        : [bytes.subarray(0, cut), bytes.subarray(cut)];
    const after = () => {
      if (duplicateAfterMs === 0) this.#write(bytes, false);
      if (duplicateAfterMs === "held") this.#held.push({ bytes, stall: false, decision: PLAIN });
    };
    if (pieces.length === 1) {
      this.#later(delayMs, () => {
        this.#write(bytes, stall);
        after();
      });
    } else {
      // A torn frame still goes out whole before any other frame (one TCP stream, one bus):
      // what else is due while its rest waits is held back and sent after it. When another
      // torn frame is already open, this one goes out in one piece, in turn.
      let mine = false;
      this.#later(delayMs, () => {
        if (this.#tornOpen !== undefined || this.#closed || this.#stalled) return;
        this.#io.write(pieces[0]!);
        this.#tornOpen = [];
        mine = true;
      });
      this.#later(delayMs + (tornPauseMs ?? 0), () => {
        if (!mine) {
          this.#write(bytes, stall);
          after();
          return;
        }
        const held = this.#tornOpen ?? [];
        this.#tornOpen = undefined;
        this.#write(pieces[1]!, stall);
        after();
        for (const out of held) this.#write(out.bytes, out.stall);
      });
    }
    const at = delayMs + (pieces.length > 1 ? (tornPauseMs ?? 0) : 0);
    if (typeof duplicateAfterMs === "number" && duplicateAfterMs > 0) {
      this.#later(at + duplicateAfterMs, () => this.#write(bytes, false));
    }
  }

  #later(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  #write(bytes: Buffer, stall: boolean): void {
    if (this.#closed || this.#stalled) return;
    if (this.#tornOpen !== undefined) {
      this.#tornOpen.push({ bytes, stall });
      return;
    }
    this.#io.write(bytes);
    if (stall) this.#stalled = true;
  }
}
