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
 *   stream cannot be trusted: the link resets the connection and opens a fresh one at once
 *   (issue 13.8: going through the runner's reconnect backoff made one garbled reply cost
 *   every tag's polls for up to reconnect_min; 3 % random bytes cost 41 % of the requests).
 *   The reply that broke the stream costs its request (malformed, or timed out); the other
 *   requests in flight were never answered on the old connection (on one TCP stream they
 *   wait behind the broken frame) and are sent again on the new one, once, each with a new
 *   timeout. Nothing read on the old connection can reach the new one. A fresh connection
 *   starts on probation like any other.
 * - The link reopens at once only after a reset it made itself, and at most once in a row
 *   for connections that took no reply: a device that garbles the first reply of every
 *   connection, or one that cannot be reached again, is closed and left to the runner's
 *   backoff. A connection the device closed is left to the runner as well.
 */
import { abortError } from "../../lib/abort.ts";
import { errorMessage, GatewayError } from "../../lib/errors.ts";
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
  /**
   * Opens a fresh connection to the same device, after a reset the link made itself;
   * absent: such a reset closes the link.
   */
  reopen?: (signal: AbortSignal) => Promise<ByteStream>;
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
  /** The transaction id on the current connection; undefined while not sent on it. */
  id: number | undefined;
  request: ReadRequest;
  expected: ExpectedReply;
  what: string;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  /** Runs from the send on the current connection. */
  timer: NodeJS.Timeout | undefined;
  /** Sent again after a reset already: the next reset fails it. */
  resent: boolean;
  settled: boolean;
  resolve(words: number[]): void;
  reject(err: GatewayError): void;
}

type ResetCode = "MODBUS_MALFORMED" | "MODBUS_TIMEOUT" | "MODBUS_TRANSACTION_ID";

class MbapLink implements ModbusLink {
  readonly peer: string;
  readonly #options: MbapLinkOptions;
  /** The connection; undefined while a fresh one opens after a reset. */
  #stream: ByteStream | undefined;
  /** Requests sent on this connection, by transaction id. */
  readonly #pending = new Map<number, Pending>();
  /** Requests waiting to be sent: on probation, or while a fresh connection opens. */
  readonly #unsent: Pending[] = [];
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
  /** After a fallback: the line discipline on the same connection, and its data feed. */
  #line: LineLink | undefined;
  #lineFeed: ((chunk: Buffer) => void) | undefined;
  #warnedStranger = false;
  /** Ends a fresh connection's opening when the link is closed. */
  readonly #closing = new AbortController();
  #reopening: Promise<void> | undefined;
  /** Resets in a row of connections that took no reply. */
  #barren = 0;
  #closed = false;
  #closeReason = "closed";
  readonly #closeListeners: ((reason: string) => void)[] = [];
  readonly #doubtListeners: DoubtListener[] = [];

  constructor(stream: ByteStream, options: MbapLinkOptions) {
    this.#options = options;
    this.peer = stream.peer;
    this.#attach(stream);
  }

  get isOpen(): boolean {
    if (this.#closed) return false;
    if (this.#line) return this.#line.isOpen;
    return this.#stream === undefined || this.#stream.isOpen;
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
    const what = describeRequest(request, this.peer);
    if (!this.isOpen) {
      return Promise.reject(
        new GatewayError("MODBUS_DISCONNECTED", `${what} failed: ${this.#closeReason}`),
      );
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<number[]>((resolve, reject) => {
      const onAbort = () => {
        if (pending.settled) return;
        this.#forget(pending);
        pending.reject(abortError(signal));
        this.#pump();
      };
      const settle = () => {
        pending.settled = true;
        clearTimeout(pending.timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const pending: Pending = {
        id: undefined,
        request,
        expected: expectedReply(request),
        what,
        timeoutMs,
        signal,
        timer: undefined,
        resent: false,
        settled: false,
        resolve: (words) => {
          if (pending.settled) return;
          settle();
          resolve(words);
          this.#pump();
        },
        reject: (err) => {
          if (pending.settled) return;
          settle();
          reject(err);
          this.#pump();
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#unsent.push(pending);
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#markClosed("closed by the gateway");
    this.#closing.abort(new Error("link closed"));
    await this.#reopening;
    await this.#stream?.close();
  }

  /**
   * Sends what waits, as far as the connection allows: pipelined, or on probation (auto, a
   * new connection) one request at a time, so that a reply under a stranger id can only be
   * the one waiting's.
   */
  #pump(): void {
    const stream = this.#stream;
    while (stream && !this.#closed && !this.#line && this.#unsent.length > 0) {
      const pipelined = this.#options.mode !== "auto" || this.#echoed >= PROBATION;
      if (!pipelined && this.#pending.size > 0) return;
      const pending = this.#unsent.shift()!;
      const id = this.#takeId();
      pending.id = id;
      pending.timer = setTimeout(
        () => afterPendingIo(() => this.#timedOut(pending)),
        pending.timeoutMs,
      );
      this.#pending.set(id, pending);
      stream.write(mbapRequestFrame(id, pending.request));
    }
  }

  /** The next id that no waiting request has and no late reply is owed to. */
  #takeId(): number {
    let id = this.#nextId;
    while (this.#abandoned.has(id) || this.#pending.has(id)) id = (id % MAX_TRANSACTION_ID) + 1;
    this.#nextId = (id % MAX_TRANSACTION_ID) + 1;
    return id;
  }

  /** Takes a connection: every per-connection record starts afresh. */
  #attach(stream: ByteStream): void {
    this.#stream = stream;
    this.#pending.clear();
    this.#abandoned.clear();
    this.#recent.clear();
    this.#nextId = 1;
    this.#buffer = EMPTY;
    this.#echoed = 0;
    this.#strangers = 0;
    this.#warnedStranger = false;
    stream.onData((chunk) => {
      if (stream !== this.#stream) return;
      if (this.#line) this.#lineFeed?.(chunk);
      else this.#receive(stream, chunk);
    });
    stream.onClose(() => {
      if (stream === this.#stream) this.#markClosed("connection closed by the device");
    });
  }

  #receive(stream: ByteStream, chunk: Buffer): void {
    let buf = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const current = () => !this.#closed && !this.#line && stream === this.#stream;
    while (current()) {
      const cut = cutMbapFrame(buf);
      if (cut.kind === "need") break;
      if (cut.kind === "fatal") {
        // with one request in flight the bytes were its reply; with several, any one's: they
        // all go again
        const reason = `${cut.reason}: connection reset`;
        const only = this.#pending.size === 1 ? [...this.#pending.values()][0]! : undefined;
        if (only) this.#done(only);
        this.#resync(reason, "MODBUS_MALFORMED");
        only?.reject(new GatewayError("MODBUS_MALFORMED", `${only.what} failed: ${reason}`));
        return;
      }
      buf = buf.subarray(cut.size);
      this.#frame(cut);
    }
    if (stream === this.#stream) this.#buffer = !current() || buf.length === 0 ? EMPTY : buf;
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
      // reset first: nothing more is sent on this connection
      this.#resync("connection reset after a malformed response", "MODBUS_MALFORMED");
      pending.reject(new GatewayError("MODBUS_MALFORMED", `${pending.what} failed: ${reason}`));
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
   * and byte count with the line's quiet window; what was sent fails with the reason, what
   * waits goes to the line.
   */
  #fallBack(detail: string): void {
    this.#options.log.warn(
      { peer: this.peer, detail },
      "Modbus device does not echo transaction ids: reading one request at a time, replies matched by unit, function and byte count",
    );
    this.#options.onNoEcho?.(detail);
    const sent = [...this.#pending.values()];
    this.#pending.clear();
    this.#buffer = EMPTY;
    const stream = this.#stream!;
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
    const line = new LineLink(feed, this.#options.timing, mbapLineFraming());
    this.#line = line;
    for (const listener of this.#doubtListeners) line.onDoubt(listener);
    for (const pending of sent) {
      pending.reject(
        new GatewayError("MODBUS_TRANSACTION_ID", `${pending.what} failed: ${detail}`),
      );
    }
    for (const pending of this.#unsent.splice(0)) {
      // its own timeout runs on the line, from its turn
      clearTimeout(pending.timer);
      line.read(pending.request, pending.timeoutMs, pending.signal).then(
        (words) => pending.resolve(words),
        (err: GatewayError) => pending.reject(err),
      );
    }
  }

  #timedOut(pending: Pending): void {
    if (pending.settled) return;
    this.#forget(pending);
    // part of a frame left unread: a device that stalled mid-frame, framing lost
    if (this.#buffer.length > 0) {
      this.#resync("connection reset after a reply stalled mid-frame", "MODBUS_MALFORMED");
    }
    pending.reject(
      new GatewayError(
        "MODBUS_TIMEOUT",
        `${pending.what} failed: no response within ${pending.timeoutMs} ms`,
      ),
    );
  }

  /** A request given up on (timeout, abort): its id is not used until its reply comes. */
  #forget(pending: Pending): void {
    const unsent = this.#unsent.indexOf(pending);
    if (unsent !== -1) this.#unsent.splice(unsent, 1);
    if (pending.id === undefined || this.#pending.get(pending.id) !== pending) return;
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
    if (pending.id === undefined) return;
    this.#pending.delete(pending.id);
    this.#recent.delete(pending.id);
    this.#recent.add(pending.id);
    if (this.#recent.size > RECENT_KEPT) this.#recent.delete(this.#recent.values().next().value!);
  }

  /**
   * The byte stream lost its framing: the connection is dropped, and a fresh one opened at
   * once when the old one had taken a reply (see the invariants); the requests that were in
   * flight on it go again on the fresh one, once. Otherwise the link closes.
   */
  #resync(reason: string, code: ResetCode): void {
    const stream = this.#stream;
    if (this.#closed || stream === undefined) return;
    const inFlight = [...this.#pending.values()];
    this.#pending.clear();
    this.#buffer = EMPTY;
    const reopen = this.#options.reopen;
    this.#barren = this.#echoed > 0 ? 0 : this.#barren + 1;
    if (reopen === undefined || this.#barren > 1) {
      this.#failAll([...inFlight, ...this.#unsent.splice(0)], code, reason);
      this.#markClosed(reason);
      void stream.close();
      return;
    }
    this.#stream = undefined;
    void stream.close();
    const again = inFlight.filter((p) => !p.resent);
    this.#failAll(
      inFlight.filter((p) => p.resent),
      code,
      reason,
    );
    for (const pending of again) {
      clearTimeout(pending.timer);
      pending.resent = true;
      pending.id = undefined;
    }
    this.#unsent.unshift(...again);
    this.#options.log.warn(
      { peer: this.peer, reason, sentAgain: again.length },
      "Modbus connection reset: reconnecting at once",
    );
    this.#reopening = reopen(this.#closing.signal).then(
      (fresh) => {
        this.#reopening = undefined;
        if (this.#closed) return fresh.close();
        this.#attach(fresh);
        this.#pump();
      },
      (err: unknown) => {
        this.#reopening = undefined;
        this.#markClosed(`${reason}; reconnecting failed: ${errorMessage(err)}`);
      },
    );
  }

  #failAll(requests: readonly Pending[], code: ResetCode, reason: string): void {
    for (const pending of requests) {
      pending.reject(new GatewayError(code, `${pending.what} failed: ${reason}`));
    }
  }

  #markClosed(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    this.#buffer = EMPTY;
    const all = [...this.#pending.values(), ...this.#unsent.splice(0)];
    this.#pending.clear();
    for (const pending of all) {
      pending.reject(new GatewayError("MODBUS_DISCONNECTED", `${pending.what} failed: ${reason}`));
    }
    for (const listener of this.#closeListeners.splice(0)) listener(reason);
  }
}
