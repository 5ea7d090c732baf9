/**
 * A Modbus line without transaction ids: RTU frames (a serial line, or RTU over TCP), or a
 * Modbus TCP device that does not echo transaction ids (mbap-link.ts falls back to this).
 * Nothing in a reply says which request it answers: a reply that comes late, twice, in pieces
 * or unasked looks exactly like the answer to whatever request waits next (issue 8: one reply
 * 100 ms past the timeout shifted every later reading; issue 11: one repeated reply shifted a
 * chain of readings, each taking the previous request's reply, all labelled good).
 *
 * Invariants:
 * - One request at a time on the line; each settles exactly once, with the words or bits asked
 *   for or a GatewayError (MODBUS_TIMEOUT, MODBUS_EXCEPTION, MODBUS_MALFORMED,
 *   MODBUS_DISCONNECTED, ABORTED).
 * - A reply is accepted only when exactly the expected frame arrived for this request: the
 *   bytes received since the request start with the unit, function code and byte count asked
 *   for, the frame checks (CRC; MBAP length), nothing follows the frame, and no byte arrives
 *   within the guard window after it. Anything else is a failed request with the reason, never
 *   a value: "unexpected reply from unit 2", "byte count 4, expected 2", "CRC", "unexpected
 *   bytes after the reply".
 * - The guard window grows with the device's turnaround (request sent to first byte of its
 *   reply, the longest of the last 32): max(base, 1.25 x that), at most request_timeout. The
 *   base is 3 ms over TCP; on a serial line twice the 3.5-character frame gap, at least 3 ms.
 *   So a copy of a reply, or a stray frame, that arrives while a request waits is followed by
 *   the real reply within the window and caught; one that arrives after the window, with no
 *   request waiting, is caught as such. What remains: a stray frame arriving while a request
 *   waits, shaped like its reply, when that request's real reply then takes longer than the
 *   window (a turnaround longer than any of the last 32 by a quarter).
 * - Nothing is decided on a timer alone: before a guard window, a timeout or a drain counts as
 *   silent, the loop reads whatever already arrived (lib/io-turn.ts), so a loop held busy
 *   never lets a byte that came inside the window pass as silence.
 * - A frame nobody asked for (bytes while no request waits, bytes after a reply, a reply that
 *   does not match, the rest of a torn frame) puts every reading accepted since the line was
 *   last quiet in doubt: onDoubt listeners get those requests at once, and the line drains.
 *   The line is quiet when nothing was sent or received for request_timeout, or a drain
 *   ended. Exempt: the late reply of the request that last timed out, arriving whole and
 *   alone, in exactly that request's shape (it was asked for).
 * - The line is in doubt when the link opens (a reply to a request sent before, by this
 *   gateway or its previous run, may still be on its way), after a timeout, an abort, a
 *   mismatch, or any frame nobody asked for. Before the next request a line in doubt is
 *   drained: received bytes are dropped until the line has been silent for `quietMs` (the
 *   device's request_timeout, so a reply up to one more timeout late is caught) counted from
 *   the moment of doubt and from the last byte. A line that does not go quiet within
 *   `maxDrainMs` is closed (the runner reconnects).
 */
import { abortError, sleep } from "../../lib/abort.ts";
import { GatewayError } from "../../lib/errors.ts";
import { afterPendingIo, pendingIoRead } from "../../lib/io-turn.ts";
import type { ByteStream } from "./byte-stream.ts";
import {
  type DoubtListener,
  describeRequest,
  type ExpectedReply,
  exceptionName,
  expectedReply,
  type ModbusLink,
  type ReadRequest,
  type ReplyCheck,
  replyValues,
} from "./request.ts";
import { checkRtuReply, rtuRequestFrame } from "./rtu-frame.ts";

export interface LineTiming {
  /** Silence that ends a drain, and that makes a line quiet (the device's request_timeout). */
  quietMs: number;
  /** Longest drain before the link is closed. */
  maxDrainMs: number;
  /** The least silence after a complete reply before it is accepted. */
  guardMs: number;
  /** The guard window never grows past this. */
  maxGuardMs: number;
}

/** How a line frames its requests and checks what comes back. */
export interface LineFraming {
  request(request: ReadRequest): Buffer;
  check(buf: Buffer, expected: ExpectedReply): ReplyCheck;
  /**
   * A timeout with part of a frame received means the framing itself is lost (MBAP, whose
   * frames carry their length): the link closes and the runner reconnects. RTU: no, the line
   * drains (a torn frame on a bus is ordinary).
   */
  tornTimeoutCloses?: boolean;
}

export const RTU_FRAMING: LineFraming = { request: rtuRequestFrame, check: checkRtuReply };

/** The least guard time after a reply: RTU over TCP, or a serial line at this baud rate. */
export function guardMs(baudRate?: number): number {
  if (baudRate === undefined) return 3;
  // t3.5 = 3.5 characters of 11 bits; twice that, so a frame sent right after is caught
  return Math.max(3, Math.ceil((2 * 3.5 * 11 * 1000) / baudRate));
}

export function lineTiming(requestTimeoutMs: number, baudRate?: number): LineTiming {
  const base = guardMs(baudRate);
  return {
    quietMs: requestTimeoutMs,
    maxDrainMs: Math.max(2000, 5 * requestTimeoutMs),
    guardMs: base,
    maxGuardMs: Math.max(base, requestTimeoutMs),
  };
}

/** Turnarounds remembered for the guard window, and the margin on the longest. */
const TURNAROUNDS_KEPT = 32;
const GUARD_MARGIN = 1.25;
/** Readings remembered since the line was last quiet (a never-quiet line forgets the oldest). */
const MAX_SINCE_QUIET = 4096;
const EMPTY = Buffer.alloc(0);

interface Doubt {
  reason: string;
  since: number;
}

interface Pending {
  request: ReadRequest;
  expected: ExpectedReply;
  what: string;
  timeoutMs: number;
  sentAt: number;
  firstByteAt?: number;
  resolve(data: Buffer): void;
  reject(err: GatewayError): void;
  timer: NodeJS.Timeout;
  /** Set once a whole reply is in: the guard runs, then it settles. */
  guard?: NodeJS.Timeout;
}

export class LineLink implements ModbusLink {
  readonly peer: string;
  readonly #stream: ByteStream;
  readonly #timing: LineTiming;
  readonly #framing: LineFraming;
  #buffer: Buffer = EMPTY;
  #pending: Pending | undefined;
  /** Why the line is in doubt, and since when; undefined: the line is in step. */
  #doubt: Doubt | undefined;
  #lastByteAt = 0;
  #lastSettledAt = 0;
  /** Bytes that came while no request waited, not judged yet (the rest may follow). */
  #idle: Buffer = EMPTY;
  /** The reply shape of the request that last timed out: its late reply is not a stranger. */
  #overdue: ExpectedReply | undefined;
  readonly #turnarounds: number[] = [];
  #turnaroundAt = 0;
  /** Requests whose replies were accepted since the line was last quiet. */
  readonly #sinceQuiet = new Set<ReadRequest>();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closeReason = "closed";
  readonly #closeListeners: ((reason: string) => void)[] = [];
  readonly #doubtListeners: DoubtListener[] = [];

  constructor(stream: ByteStream, timing: LineTiming, framing: LineFraming = RTU_FRAMING) {
    this.#stream = stream;
    this.peer = stream.peer;
    this.#timing = timing;
    this.#framing = framing;
    this.#setDoubt("opening the link");
    stream.onData((chunk) => this.#receive(chunk));
    stream.onClose(() => this.#markClosed("connection closed by the device"));
  }

  get isOpen(): boolean {
    return !this.#closed && this.#stream.isOpen;
  }

  /** Why the line is in doubt (it drains before the next request), for tests and logs. */
  get doubt(): string | undefined {
    return this.#doubt?.reason;
  }

  /** The silence a complete reply must be followed by before it is accepted, ms. */
  get guardMs(): number {
    const { guardMs: base, maxGuardMs } = this.#timing;
    const longest = Math.max(0, ...this.#turnarounds);
    return Math.min(maxGuardMs, Math.max(base, Math.ceil(longest * GUARD_MARGIN)));
  }

  onClose(listener: (reason: string) => void): void {
    if (this.#closed) listener(this.#closeReason);
    else this.#closeListeners.push(listener);
  }

  onDoubt(listener: DoubtListener): void {
    this.#doubtListeners.push(listener);
  }

  read(request: ReadRequest, timeoutMs: number, signal?: AbortSignal): Promise<number[]> {
    const run = this.#queue.then(() => this.#readNow(request, timeoutMs, signal));
    this.#queue = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    this.#markClosed("closed by the gateway");
    await this.#stream.close();
  }

  async #readNow(request: ReadRequest, timeoutMs: number, signal?: AbortSignal) {
    const what = describeRequest(request, this.peer);
    if (signal?.aborted) throw abortError(signal);
    await this.#drain(what, signal);
    if (!this.isOpen) {
      throw new GatewayError("MODBUS_DISCONNECTED", `${what} failed: ${this.#closeReason}`);
    }
    const now = performance.now();
    if (now - Math.max(this.#lastByteAt, this.#lastSettledAt) >= this.#timing.quietMs) {
      this.#sinceQuiet.clear();
    }
    const data = await this.#exchange(request, what, timeoutMs, signal);
    return replyValues(request, data);
  }

  /** Drops whatever a line in doubt still carries, until it has been quiet for quietMs. */
  async #drain(what: string, signal?: AbortSignal): Promise<void> {
    if (this.#doubt === undefined) return;
    const { quietMs, maxDrainMs } = this.#timing;
    const started = performance.now();
    for (;;) {
      const doubt: Doubt | undefined = this.#doubt;
      const quietSince = Math.max(this.#lastByteAt, doubt?.since ?? 0);
      const left = quietMs - (performance.now() - quietSince);
      if (left <= 0) {
        // silent by the clock: read what already arrived before calling the line quiet
        await pendingIoRead();
        if (this.#lastByteAt <= quietSince && this.#doubt === doubt) break;
        continue;
      }
      if (performance.now() - started > maxDrainMs) {
        const reason = `the line did not go quiet within ${maxDrainMs} ms after ${doubt?.reason}: connection closed`;
        this.#markClosed(reason);
        void this.#stream.close();
        throw new GatewayError("MODBUS_DISCONNECTED", `${what} failed: ${reason}`);
      }
      await sleep(Math.ceil(left), signal);
    }
    if (this.#idle.length > 0) {
      this.#retract(
        `an incomplete frame that arrived on ${this.peer} while no request was waiting`,
      );
    }
    this.#idle = EMPTY;
    this.#overdue = undefined;
    this.#buffer = EMPTY;
    this.#doubt = undefined;
    this.#sinceQuiet.clear();
  }

  #exchange(
    request: ReadRequest,
    what: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = () => this.#fail(abortError(signal), "a request was aborted");
      const done = () => signal?.removeEventListener("abort", onAbort);
      const pending: Pending = {
        request,
        expected: expectedReply(request),
        what,
        timeoutMs,
        sentAt: performance.now(),
        resolve: (data) => {
          done();
          resolve(data);
        },
        reject: (err) => {
          done();
          reject(err);
        },
        timer: setTimeout(() => afterPendingIo(() => this.#timedOut(pending)), timeoutMs),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#buffer = EMPTY;
      this.#pending = pending;
      this.#stream.write(this.#framing.request(request));
    });
  }

  #receive(chunk: Buffer): void {
    const now = performance.now();
    this.#lastByteAt = now;
    const pending = this.#pending;
    if (pending === undefined) {
      this.#idleBytes(chunk);
      return;
    }
    pending.firstByteAt ??= now;
    if (pending.guard !== undefined) {
      this.#fail(
        this.#malformed(pending, "unexpected bytes after the reply"),
        "bytes after a reply",
        true,
      );
      return;
    }
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const check = this.#framing.check(this.#buffer, pending.expected);
    if (check.kind === "need") return;
    if (check.kind === "mismatch") {
      this.#fail(this.#malformed(pending, check.reason), "a reply that did not match", true);
      return;
    }
    if (this.#buffer.length > check.size) {
      this.#fail(
        this.#malformed(pending, "unexpected bytes after the reply"),
        "bytes after a reply",
        true,
      );
      return;
    }
    clearTimeout(pending.timer);
    this.#noteTurnaround(pending.firstByteAt - pending.sentAt);
    pending.guard = setTimeout(
      () => afterPendingIo(() => this.#settle(pending, check)),
      this.guardMs,
    );
  }

  /** The guard window passed and every byte that came by then was read: the reply stands. */
  #settle(pending: Pending, check: ReplyCheck): void {
    if (this.#pending !== pending) return;
    this.#pending = undefined;
    this.#buffer = EMPTY;
    this.#lastSettledAt = performance.now();
    if (check.kind === "reply") {
      if (this.#sinceQuiet.size >= MAX_SINCE_QUIET) {
        this.#sinceQuiet.delete(this.#sinceQuiet.values().next().value!);
      }
      this.#sinceQuiet.delete(pending.request);
      this.#sinceQuiet.add(pending.request);
      pending.resolve(Buffer.from(check.data));
    } else if (check.kind === "exception") {
      pending.reject(exception(pending.what, check.code));
    }
  }

  /** Bytes with no request waiting: the late reply of the request that timed out, or a stranger. */
  #idleBytes(chunk: Buffer): void {
    this.#idle = this.#idle.length === 0 ? chunk : Buffer.concat([this.#idle, chunk]);
    const overdue = this.#overdue;
    if (overdue !== undefined) {
      const check = this.#framing.check(this.#idle, overdue);
      if (check.kind === "need") {
        this.#setDoubt("a late reply arriving");
        return;
      }
      if (check.kind !== "mismatch" && this.#idle.length === check.size) {
        this.#idle = EMPTY;
        this.#overdue = undefined;
        this.#setDoubt("a late reply");
        return;
      }
    }
    this.#idle = EMPTY;
    this.#overdue = undefined;
    this.#setDoubt("bytes that arrived while no request was waiting");
    this.#retract(`bytes that arrived on ${this.peer} while no request was waiting`);
  }

  #timedOut(pending: Pending): void {
    if (this.#pending !== pending || pending.guard !== undefined) return;
    const partial = this.#buffer;
    const suffix =
      partial.length > 0 ? ` (${partial.length} bytes of an incomplete reply dropped)` : "";
    this.#fail(
      new GatewayError(
        "MODBUS_TIMEOUT",
        `${pending.what} failed: no response within ${pending.timeoutMs} ms${suffix}`,
      ),
      "a request timed out",
    );
    if (partial.length > 0 && this.#framing.tornTimeoutCloses) {
      this.#markClosed("connection reset after a reply stalled mid-frame");
      void this.#stream.close();
      return;
    }
    // its reply may still come, late (its first bytes may be in already): that one is expected
    this.#overdue = pending.expected;
    this.#idle = partial;
  }

  /**
   * Settles the waiting request with `err` and puts the line in doubt; `foreign`: a frame
   * nobody asked for is on the line, so the readings since it was last quiet are in doubt.
   */
  #fail(err: GatewayError, doubt: string, foreign = false): void {
    const pending = this.#pending;
    this.#pending = undefined;
    this.#buffer = EMPTY;
    this.#idle = EMPTY;
    this.#overdue = undefined;
    this.#setDoubt(doubt);
    if (foreign) this.#retract(err.message);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    clearTimeout(pending.guard);
    pending.reject(err);
  }

  /** Hands the readings accepted since the line was last quiet to the doubt listeners. */
  #retract(reason: string): void {
    if (this.#sinceQuiet.size === 0) return;
    const requests = [...this.#sinceQuiet];
    this.#sinceQuiet.clear();
    for (const listener of this.#doubtListeners) listener(requests, reason);
  }

  #noteTurnaround(ms: number): void {
    this.#turnarounds[this.#turnaroundAt] = ms;
    this.#turnaroundAt = (this.#turnaroundAt + 1) % TURNAROUNDS_KEPT;
  }

  #malformed(pending: Pending, reason: string): GatewayError {
    return new GatewayError("MODBUS_MALFORMED", `${pending.what} failed: ${reason}`);
  }

  #setDoubt(reason: string): void {
    this.#doubt = { reason, since: performance.now() };
  }

  #markClosed(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    this.#fail(
      new GatewayError(
        "MODBUS_DISCONNECTED",
        `${this.#pending?.what ?? "request"} failed: ${reason}`,
      ),
      reason,
    );
    for (const listener of this.#closeListeners.splice(0)) listener(reason);
  }
}

function exception(what: string, code: number): GatewayError {
  return new GatewayError(
    "MODBUS_EXCEPTION",
    `${what} failed: exception ${code} (${exceptionName(code)})`,
    { details: { exceptionCode: code } },
  );
}
