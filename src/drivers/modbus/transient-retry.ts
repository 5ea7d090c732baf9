/**
 * Sending one Modbus request again within a read after a transient answer (issue 13 point 10).
 * A device (or a TCP-to-RTU converter) that answers "busy" to one request in ten must not turn
 * each busy reply into an outage on record: the request is repeated, bounded, after a short
 * backoff, and its tags go bad only when the last try fails.
 *
 * Transient: exception 5 (acknowledge: the device took it but has not finished), 6 (server
 * device busy) and 11 (gateway target device failed to respond: a converter that gave up on a
 * slow bus), each retried up to `retries` times; and a single timeout, retried at most once
 * (a second timeout in a row is no longer a lost reply; the retry counts as the same silence
 * for the unit-health skip, which takes over at the next poll's timeout). Every
 * other failure (exception 1, 2, 3, 4, a malformed reply, a lost connection) is returned at once.
 * The backoff is 50 ms, doubling at each retry, and ends early on abort.
 *
 * This is the wire's business, not the runner's: the runner's retries (reconnects, polls) see
 * only the outcome of the read.
 */
import { sleep } from "../../lib/abort.ts";
import { errorMessage, GatewayError, isGatewayError } from "../../lib/errors.ts";
import type { ReadFailure, ReadOutcome } from "./hole-probe.ts";

/** Exception codes worth another try within the read. */
export const TRANSIENT_EXCEPTIONS: ReadonlySet<number> = new Set([5, 6, 11]);

export const FIRST_BACKOFF_MS = 50;

export interface RetryOptions {
  /** Repeats after a transient exception (a timeout is repeated at most once of them). */
  retries: number;
  signal: AbortSignal;
  /** Whether another try makes sense now (the link is open, the unit is not being skipped). */
  mayRetry(): boolean;
  /** Called before each repeat. */
  onRetry(failure: ReadFailure): void;
}

/** The outcome of a failed request: its reason, code and exception code. */
export function failureOf(err: unknown): ReadFailure {
  const reason = errorMessage(err);
  const code = err instanceof GatewayError ? err.code : "MODBUS_READ";
  const exception =
    err instanceof GatewayError && typeof err.details?.exceptionCode === "number"
      ? err.details.exceptionCode
      : undefined;
  return { ok: false, reason, code, ...(exception === undefined ? {} : { exception }) };
}

/** Sends a request, again after a transient answer; throws only on abort. */
export async function withRetries(
  send: () => Promise<number[]>,
  options: RetryOptions,
): Promise<ReadOutcome> {
  let timeouts = 0;
  for (let attempt = 0; ; attempt++) {
    let failure: ReadFailure;
    try {
      return { ok: true, words: await send() };
    } catch (err) {
      if (isGatewayError(err, "ABORTED") || options.signal.aborted) throw err;
      failure = failureOf(err);
    }
    if (failure.code === "MODBUS_TIMEOUT") timeouts += 1;
    const transient =
      (failure.exception !== undefined && TRANSIENT_EXCEPTIONS.has(failure.exception)) ||
      (failure.code === "MODBUS_TIMEOUT" && timeouts === 1);
    if (!transient || attempt >= options.retries || !options.mayRetry()) return failure;
    options.onRetry(failure);
    await sleep(FIRST_BACKOFF_MS * 2 ** attempt, options.signal);
    if (!options.mayRetry()) return failure;
  }
}
