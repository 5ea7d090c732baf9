/**
 * A Modbus TCP link (MBAP framing) on a byte stream the gateway reads itself: requests are
 * pipelined and each reply is matched to its request by transaction id.
 *
 * Invariants:
 * - Every request has its own timeout and settles exactly once: with the words or bits asked
 *   for, or a GatewayError whose code says why (MODBUS_TIMEOUT, MODBUS_EXCEPTION,
 *   MODBUS_MALFORMED, MODBUS_DISCONNECTED, MODBUS_TRANSACTION_ID, ABORTED).
 * - A reply is accepted only under the transaction id of a waiting request, from the unit
 *   asked, with the function and exactly the byte count asked for, filling its frame.
 * - Transaction ids run 1..65535 on a connection, and an id whose request timed out or was
 *   aborted is not used again until its late reply has come in: the late reply then finds no
 *   request to answer and is dropped. When too many such ids are out, the link closes. The ids
 *   of the last 256 replies taken are remembered, so a second copy of a reply is dropped.
 * - A reply under an id that no request has, never had lately and does not owe is a device
 *   that does not echo transaction ids (some answer with 0, with id + 1, or with the id's bytes
 *   swapped; pymodbus does not check ids for this reason). It is named plainly ("the device
 *   answered with id 0 to request 17: it does not echo transaction ids"), never taken:
 *   - In every mode the one waiting request of that shape fails with that reason at once (no
 *     wait for its timeout, no timeout counted against the unit).
 *   - `transaction_ids: auto` (default): a new connection sends one request at a time until
 *     PROBATION replies came under their own ids, so such a reply can only be the one waiting
 *     request's. On the second in a row (none under its own id between), with a warning, the
 *     link carries on one request at a time matched by unit, function and byte count with
 *     the quiet window of an RTU line (line-guard.ts, same connection; the driver keeps to it
 *     across reconnects). After probation one stranger (an unsolicited frame) is dropped with
 *     a warning; two in a row mean the device stopped echoing ids: the connection is reset
 *     (pairing can no longer be trusted; the next connection starts on probation).
 *   - `match`: nothing more (a warning once per connection).
 *   - `ignore`: the line discipline from the start (link.ts).
 * - After a frame that cannot be cut (an MBAP length outside 2..254), a malformed reply, or a
 *   timeout that leaves part of a frame unread (a device that stalled mid-frame), the byte
 *   stream cannot be trusted: the link closes itself and the runner reconnects.
 */
import { abortError } from "../../lib/abort.ts";
import { GatewayError } from "../../lib/errors.ts";
import { afterPendingIo } from "../../lib/io-turn.ts";
import type { Logger } from "../../lib/logger.ts";
import type { ByteStream } from "./byte-stream.ts";
import { type LineFraming, LineLink, type LineTiming } from "./line-guard.ts";
import {
  checkMbapLineReply,
  checkMbapPdu,
  cutMbapFrame,
  type MbapCut,
  mbapRequestFrame,
} from "./mbap-frame.ts";
import {
  type DoubtListener,
  describeRequest,
  type ExpectedReply,
  exceptionName,
  expectedReply,
  type ModbusLink,
  type ReadRequest,
  replyValues,
} from "./request.ts";

export type TransactionIdMode = "auto" | "match" | "ignore";

export interface MbapLinkOptions {
  mode: TransactionIdMode;
  /** The quiet window of the line discipline (ignore, or auto after a fallback). */
  timing: LineTiming;
  log: Logger;
  /** Told once when the device is found not to echo transaction ids (auto). */
  onNoEcho?: (detail: string) => void;
}

/** Replies under their own ids before an auto link pipelines. */
export const PROBATION = 3;
/**
 * Replies under stranger ids in a row (none under its own between) before an auto link falls
 * back (on probation) or resets the connection (after).
 */
const STRANGERS_IN_A_ROW = 2;
/** Ids whose reply is still owed before the link starts afresh. */
const MAX_ABANDONED = 1024;
const MAX_TRANSACTION_ID = 0xffff;
const RECENT_KEPT = 256;
const EMPTY = Buffer.alloc(0);

/** MBAP under a fresh id per request; replies matched by shape (the id is not trusted). */
export function mbapLineFraming(): LineFraming {
  let tid = 0;
  return {
    request: (request) => {
      tid = (tid % MAX_TRANSACTION_ID) + 1;
      return mbapRequestFrame(tid, request);
    },
    check: checkMbapLineReply,
    tornTimeoutCloses: true,
  };
}

export function mbapLink(stream: ByteStream, options: MbapLinkOptions): ModbusLink {
  if (options.mode === "ignore") return new LineLink(stream, options.timing, mbapLineFraming());
  return new MbapLink(stream, options);
}

interface Pending {
  id: number;
  request: ReadRequest;
  expected: ExpectedReply;
  what: string;
  timeoutMs: number;
  timer: NodeJS.Timeout;
  resolve(words: number[]): void;
  reject(err: GatewayError): void;
}

class MbapLink implements ModbusLink {
  readonly peer: string;
  readonly #stream: ByteStream;
  readonly #options: MbapLinkOptions;
  readonly #pending = new Map<number, Pending>();
  /** Ids of requests given up on whose reply has not come. */
  readonly #abandoned = new Set<number>();
  /** Ids of the last replies taken, oldest first: a second copy is dropped. */
  readonly #recent = new Set<number>();
  #nextId = 1;
  #buffer: Buffer = EMPTY;
  /** Replies that came under their own id on this connection. */
  #echoed = 0;
  /** Replies under stranger ids since the last one under its own. */
  #strangers = 0;
  #probation: Promise<unknown> = Promise.resolve();
  /** After a fallback: the line discipline on the same connection, and its data feed. */
  #line: LineLink | undefined;
  #lineFeed: ((chunk: Buffer) => void) | undefined;
  #warnedStranger = false;
  #closed = false;
  #closeReason = "closed";
  readonly #closeListeners: ((reason: string) => void)[] = [];
  readonly #doubtListeners: DoubtListener[] = [];

  constructor(stream: ByteStream, options: MbapLinkOptions) {
    this.#stream = stream;
    this.#options = options;
    this.peer = stream.peer;
    stream.onData((chunk) => (this.#line ? this.#lineFeed?.(chunk) : this.#receive(chunk)));
    stream.onClose(() => this.#markClosed("connection closed by the device"));
  }

  get isOpen(): boolean {
    return !this.#closed && (this.#line?.isOpen ?? this.#stream.isOpen);
  }

  /** Whether replies are matched by transaction id (false once fallen back to one at a time). */
  get matchesIds(): boolean {
    return this.#line === undefined;
  }

  onClose(listener: (reason: string) => void): void {
    if (this.#closed) listener(this.#closeReason);
    else this.#closeListeners.push(listener);
  }

  onDoubt(listener: DoubtListener): void {
    this.#doubtListeners.push(listener);
    this.#line?.onDoubt(listener);
  }

  read(request: ReadRequest, timeoutMs: number, signal?: AbortSignal): Promise<number[]> {
    if (this.#line) return this.#line.read(request, timeoutMs, signal);
    if (this.#options.mode !== "auto" || this.#echoed >= PROBATION) {
      return this.#send(request, timeoutMs, signal);
    }
    // on probation: one at a time, so a reply under a stranger id can only be the one waiting's
    const run = this.#probation.then(() =>
      this.#line
        ? this.#line.read(request, timeoutMs, signal)
        : this.#send(request, timeoutMs, signal),
    );
    this.#probation = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    this.#markClosed("closed by the gateway");
    await this.#stream.close();
  }

  #send(request: ReadRequest, timeoutMs: number, signal?: AbortSignal): Promise<number[]> {
    const what = describeRequest(request, this.peer);
    if (!this.isOpen) {
      return Promise.reject(
        new GatewayError("MODBUS_DISCONNECTED", `${what} failed: ${this.#closeReason}`),
      );
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const id = this.#takeId();
    return new Promise<number[]>((resolve, reject) => {
      const onAbort = () => {
        if (this.#pending.get(id) !== pending) return;
        this.#giveUp(pending);
        pending.reject(abortError(signal));
      };
      const pending: Pending = {
        id,
        request,
        expected: expectedReply(request),
        what,
        timeoutMs,
        timer: setTimeout(() => afterPendingIo(() => this.#timedOut(pending)), timeoutMs),
        resolve: (words) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(words);
        },
        reject: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(id, pending);
      this.#stream.write(mbapRequestFrame(id, request));
    });
  }

  /** The next id that no waiting request has and no late reply is owed to. */
  #takeId(): number {
    let id = this.#nextId;
    while (this.#abandoned.has(id) || this.#pending.has(id)) id = (id % MAX_TRANSACTION_ID) + 1;
    this.#nextId = (id % MAX_TRANSACTION_ID) + 1;
    return id;
  }

  #receive(chunk: Buffer): void {
    let buf = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (!this.#closed && !this.#line) {
      const cut = cutMbapFrame(buf);
      if (cut.kind === "need") break;
      if (cut.kind === "fatal") {
        this.#resync(`${cut.reason}: connection reset`, "MODBUS_MALFORMED");
        return;
      }
      buf = buf.subarray(cut.size);
      this.#frame(cut);
    }
    this.#buffer = this.#closed || this.#line || buf.length === 0 ? EMPTY : buf;
  }

  #frame(frame: Extract<MbapCut, { kind: "frame" }>): void {
    const pending = this.#pending.get(frame.tid);
    if (pending === undefined) {
      // a late reply to a request given up on, or a second copy of one taken: dropped
      if (this.#abandoned.delete(frame.tid) || this.#recent.has(frame.tid)) return;
      this.#stranger(frame);
      return;
    }
    this.#done(pending);
    const check = checkMbapPdu(frame.unit, frame.pdu, pending.expected);
    if (check.kind === "mismatch" || check.kind === "need") {
      const reason = check.kind === "mismatch" ? check.reason : "incomplete reply";
      pending.reject(new GatewayError("MODBUS_MALFORMED", `${pending.what} failed: ${reason}`));
      this.#resync("connection reset after a malformed response", "MODBUS_MALFORMED");
      return;
    }
    this.#echoed += 1;
    this.#strangers = 0;
    if (check.kind === "exception") {
      pending.reject(
        new GatewayError(
          "MODBUS_EXCEPTION",
          `${pending.what} failed: exception ${check.code} (${exceptionName(check.code)})`,
          { details: { exceptionCode: check.code } },
        ),
      );
      return;
    }
    pending.resolve(replyValues(pending.request, check.data));
  }

  /** A reply under an id no request has: a device that does not echo transaction ids. */
  #stranger(frame: Extract<MbapCut, { kind: "frame" }>): void {
    const waiting = [...this.#pending.values()];
    const own = waiting.length === 1 ? waiting[0] : undefined;
    const detail = own
      ? `the device answered with id ${frame.tid} to request ${own.id}: it does not echo transaction ids`
      : `the device answered with id ${frame.tid}, which none of the ${waiting.length} requests waiting has: it does not echo transaction ids`;
    const { mode, log } = this.#options;
    this.#strangers += 1;
    if (mode === "auto" && this.#strangers >= STRANGERS_IN_A_ROW) {
      if (this.#echoed < PROBATION) this.#fallBack(detail);
      // it echoed ids, then stopped: pairing can no longer be trusted
      else this.#resync(`${detail}: connection reset`, "MODBUS_TRANSACTION_ID");
      return;
    }
    if (!this.#warnedStranger) {
      this.#warnedStranger = true;
      log.warn({ peer: this.peer, detail, mode }, "Modbus reply under an unknown transaction id");
    }
    // never taken: the one waiting request of that shape fails with the reason
    if (own && checkMbapPdu(frame.unit, frame.pdu, own.expected).kind !== "mismatch") {
      this.#done(own);
      const how = mode === "match" ? " (transaction_ids: match)" : "";
      own.reject(new GatewayError("MODBUS_TRANSACTION_ID", `${own.what} failed: ${detail}${how}`));
    }
  }

  /**
   * Carries on one request at a time on this connection, replies matched by unit, function
   * and byte count with the line's quiet window; what waits now fails with the reason.
   */
  #fallBack(detail: string): void {
    this.#options.log.warn(
      { peer: this.peer, detail },
      "Modbus device does not echo transaction ids: reading one request at a time, replies matched by unit, function and byte count",
    );
    this.#options.onNoEcho?.(detail);
    for (const pending of this.#takeAll()) {
      pending.reject(
        new GatewayError("MODBUS_TRANSACTION_ID", `${pending.what} failed: ${detail}`),
      );
    }
    this.#buffer = EMPTY;
    const stream = this.#stream;
    const feed: ByteStream = {
      peer: stream.peer,
      get isOpen() {
        return stream.isOpen;
      },
      write: (bytes) => stream.write(bytes),
      onData: (listener) => {
        this.#lineFeed = listener;
      },
      onClose: (listener) => stream.onClose(listener),
      close: () => stream.close(),
    };
    // a new line starts in doubt: what the device still sends for the failed requests drains
    this.#line = new LineLink(feed, this.#options.timing, mbapLineFraming());
    for (const listener of this.#doubtListeners) this.#line.onDoubt(listener);
  }

  #timedOut(pending: Pending): void {
    if (this.#pending.get(pending.id) !== pending) return;
    this.#giveUp(pending);
    pending.reject(
      new GatewayError(
        "MODBUS_TIMEOUT",
        `${pending.what} failed: no response within ${pending.timeoutMs} ms`,
      ),
    );
    // part of a frame left unread: a device that stalled mid-frame, framing lost
    if (this.#buffer.length > 0) {
      this.#resync("connection reset after a reply stalled mid-frame", "MODBUS_MALFORMED");
    }
  }

  /** Forgets a request whose reply may still come: its id is not used until it does. */
  #giveUp(pending: Pending): void {
    clearTimeout(pending.timer);
    this.#pending.delete(pending.id);
    this.#abandoned.add(pending.id);
    if (this.#abandoned.size > MAX_ABANDONED) {
      queueMicrotask(() =>
        this.#resync(`${this.#abandoned.size} replies overdue: connection reset`, "MODBUS_TIMEOUT"),
      );
    }
  }

  /** A request answered: forgotten, its id remembered a while so a copy is dropped. */
  #done(pending: Pending): void {
    clearTimeout(pending.timer);
    this.#pending.delete(pending.id);
    this.#recent.delete(pending.id);
    this.#recent.add(pending.id);
    if (this.#recent.size > RECENT_KEPT) this.#recent.delete(this.#recent.values().next().value!);
  }

  #takeAll(): Pending[] {
    const all = [...this.#pending.values()];
    for (const pending of all) clearTimeout(pending.timer);
    this.#pending.clear();
    return all;
  }

  /** On a TCP stream a bad frame means lost framing: drop the connection to start clean. */
  #resync(reason: string, code: "MODBUS_MALFORMED" | "MODBUS_TIMEOUT" | "MODBUS_TRANSACTION_ID") {
    for (const pending of this.#takeAll()) {
      pending.reject(new GatewayError(code, `${pending.what} failed: ${reason}`));
    }
    this.#markClosed(reason);
    void this.#stream.close();
  }

  #markClosed(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    this.#buffer = EMPTY;
    for (const pending of this.#takeAll()) {
      pending.reject(new GatewayError("MODBUS_DISCONNECTED", `${pending.what} failed: ${reason}`));
    }
    for (const listener of this.#closeListeners.splice(0)) listener(reason);
  }
}
