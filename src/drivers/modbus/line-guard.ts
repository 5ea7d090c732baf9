/**
 * A Modbus RTU link (a serial line, or RTU frames over TCP) guarded against replies that do not
 * belong to the request waiting. RTU has no transaction id: a reply that comes late, twice, in
 * pieces or unasked looks exactly like the answer to whatever request waits next (issue 8: one
 * reply 100 ms past the timeout shifted every later reading, all labelled good, for ever).
 *
 * Invariants:
 * - One request at a time on the line; each settles exactly once, with the words or bits asked
 *   for or a GatewayError (MODBUS_TIMEOUT, MODBUS_EXCEPTION, MODBUS_MALFORMED,
 *   MODBUS_DISCONNECTED, ABORTED).
 * - A reply is accepted only when exactly the expected frame arrived for this request: the
 *   bytes received since the request start with the unit, function code and byte count asked
 *   for, the CRC matches, nothing follows the frame, and no byte arrives within the guard time
 *   after it (`guardMs`: 3 ms over TCP; on a serial line twice the 3.5-character silence that
 *   separates frames, at least 3 ms). Anything else is a failed request with the reason, never a
 *   value: "unexpected reply from unit 2", "byte count 4, expected 2", "CRC", "unexpected bytes
 *   after the reply".
 * - The line is in doubt when the link opens (a reply to a request sent before, by this
 *   gateway or its previous run, may still be on its way), after a timeout, an abort, a
 *   mismatch, bytes after a reply, or bytes that arrived while no request was waiting. Before the next request a line in doubt is
 *   drained: received bytes are dropped until the line has been silent for `quietMs` (the
 *   device's request_timeout, so a reply up to one more timeout late is caught) counted from
 *   the moment of doubt and from the last byte. A line that does not go quiet within
 *   `maxDrainMs` is closed (the runner reconnects).
 * - Limit: a stray frame that arrives while a request waits, carries its unit, function code
 *   and byte count, and is not followed by another byte within the guard time cannot be told
 *   from the reply. The bytes that follow it later put the line in doubt, so the next request
 *   drains; the drain is what keeps one fault from shifting every later reading.
 */
import { abortError, sleep } from "../../lib/abort.ts";
import { GatewayError } from "../../lib/errors.ts";
import {
  describeRequest,
  exceptionName,
  FUNCTION_OF,
  isBitRequest,
  type ModbusLink,
  type ReadRequest,
  replyByteCount,
} from "./request.ts";
import { checkReply, type ExpectedReply, readRequestFrame } from "./rtu-frame.ts";
import type { ByteStream } from "./rtu-port.ts";

export interface LineTiming {
  /** Silence that ends a drain (the device's request_timeout). */
  quietMs: number;
  /** Longest drain before the link is closed. */
  maxDrainMs: number;
  /** Silence after a complete reply before it is accepted. */
  guardMs: number;
}

/** Guard time after a reply: RTU over TCP, or a serial line at this baud rate. */
export function guardMs(baudRate?: number): number {
  if (baudRate === undefined) return 3;
  // t3.5 = 3.5 characters of 11 bits; twice that, so a frame sent right after is caught
  return Math.max(3, Math.ceil((2 * 3.5 * 11 * 1000) / baudRate));
}

export function lineTiming(requestTimeoutMs: number, baudRate?: number): LineTiming {
  return {
    quietMs: requestTimeoutMs,
    maxDrainMs: Math.max(2000, 5 * requestTimeoutMs),
    guardMs: guardMs(baudRate),
  };
}

interface Pending {
  expected: ExpectedReply;
  what: string;
  timeoutMs: number;
  resolve(data: Buffer): void;
  reject(err: GatewayError): void;
  timer: NodeJS.Timeout;
  /** Set once a whole reply is in: the guard runs, then it settles. */
  guard?: NodeJS.Timeout;
}

export class RtuLink implements ModbusLink {
  readonly peer: string;
  readonly #stream: ByteStream;
  readonly #timing: LineTiming;
  #buffer: Buffer = Buffer.alloc(0);
  #pending: Pending | undefined;
  /** Why the line is in doubt, and since when; undefined: the line is in step. */
  #doubt: { reason: string; since: number } | undefined;
  #lastByteAt = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closeReason = "closed";
  readonly #closeListeners: ((reason: string) => void)[] = [];

  constructor(stream: ByteStream, timing: LineTiming) {
    this.#stream = stream;
    this.peer = stream.peer;
    this.#timing = timing;
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

  onClose(listener: (reason: string) => void): void {
    if (this.#closed) listener(this.#closeReason);
    else this.#closeListeners.push(listener);
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
    const fc = FUNCTION_OF[request.table];
    const expected = { unit: request.unitId, functionCode: fc, byteCount: replyByteCount(request) };
    const data = await this.#exchange(
      readRequestFrame(request.unitId, fc, request.start, request.count),
      expected,
      what,
      timeoutMs,
      signal,
    );
    if (!isBitRequest(request)) {
      return Array.from({ length: request.count }, (_, i) => data.readUInt16BE(2 * i));
    }
    return Array.from({ length: request.count }, (_, i) => (data[i >> 3]! >> (i & 7)) & 1);
  }

  /** Drops whatever a line in doubt still carries, until it has been quiet for quietMs. */
  async #drain(what: string, signal?: AbortSignal): Promise<void> {
    const doubt = this.#doubt;
    if (doubt === undefined) return;
    const { quietMs, maxDrainMs } = this.#timing;
    const started = performance.now();
    for (;;) {
      const quietSince = Math.max(this.#lastByteAt, doubt.since);
      const left = quietMs - (performance.now() - quietSince);
      if (left <= 0) break;
      if (performance.now() - started > maxDrainMs) {
        const reason = `the line did not go quiet within ${maxDrainMs} ms after ${doubt.reason}: connection closed`;
        this.#markClosed(reason);
        void this.#stream.close();
        throw new GatewayError("MODBUS_DISCONNECTED", `${what} failed: ${reason}`);
      }
      await sleep(Math.ceil(left), signal);
    }
    this.#buffer = Buffer.alloc(0);
    this.#doubt = undefined;
  }

  #exchange(
    frame: Buffer,
    expected: ExpectedReply,
    what: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = () => this.#fail(abortError(signal), "a request was aborted");
      const done = () => signal?.removeEventListener("abort", onAbort);
      const pending: Pending = {
        expected,
        what,
        timeoutMs,
        resolve: (data) => {
          done();
          resolve(data);
        },
        reject: (err) => {
          done();
          reject(err);
        },
        timer: setTimeout(() => this.#timedOut(), timeoutMs),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#buffer = Buffer.alloc(0);
      this.#pending = pending;
      this.#stream.write(frame);
    });
  }

  #receive(chunk: Buffer): void {
    this.#lastByteAt = performance.now();
    const pending = this.#pending;
    if (pending === undefined) {
      this.#setDoubt("bytes that arrived while no request was waiting");
      return;
    }
    if (pending.guard !== undefined) {
      this.#fail(
        this.#malformed(pending, "unexpected bytes after the reply"),
        "bytes after a reply",
      );
      return;
    }
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const check = checkReply(this.#buffer, pending.expected);
    if (check.kind === "need") return;
    if (check.kind === "mismatch") {
      this.#fail(this.#malformed(pending, check.reason), "a reply that did not match");
      return;
    }
    if (this.#buffer.length > check.size) {
      this.#fail(
        this.#malformed(pending, "unexpected bytes after the reply"),
        "bytes after a reply",
      );
      return;
    }
    clearTimeout(pending.timer);
    pending.guard = setTimeout(() => {
      this.#pending = undefined;
      this.#buffer = Buffer.alloc(0);
      if (check.kind === "reply") pending.resolve(Buffer.from(check.data));
      else pending.reject(exception(pending.what, check.code));
    }, this.#timing.guardMs);
  }

  #timedOut(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    const partial = this.#buffer.length;
    const suffix = partial > 0 ? ` (${partial} bytes of an incomplete reply dropped)` : "";
    this.#fail(
      new GatewayError(
        "MODBUS_TIMEOUT",
        `${pending.what} failed: no response within ${pending.timeoutMs} ms${suffix}`,
      ),
      "a request timed out",
    );
  }

  /** Settles the waiting request with `err` and puts the line in doubt. */
  #fail(err: GatewayError, doubt: string): void {
    const pending = this.#pending;
    this.#pending = undefined;
    this.#buffer = Buffer.alloc(0);
    this.#setDoubt(doubt);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    clearTimeout(pending.guard);
    pending.reject(err);
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
