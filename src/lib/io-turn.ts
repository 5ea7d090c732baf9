/**
 * Waiting for the bytes that have already arrived. Node runs expired timers before it reads
 * sockets and files in a turn of the event loop, so a timer can fire while bytes that came in
 * before its deadline still wait, unread, in the kernel: after a loop held busy for longer
 * than a short timer, always. A decision that rests on "nothing arrived by the deadline" (a
 * guard window, a timeout, a quiet line) waits for this first.
 *
 * Two turns through the loop's poll phase: a socket's bytes are read in the first; a serial
 * port's (read through the thread pool once the poll phase reports it readable) by the second.
 */
export function afterPendingIo(fn: () => void): void {
  setImmediate(() => setImmediate(fn));
}

/** afterPendingIo as a promise. */
export function pendingIoRead(): Promise<void> {
  return new Promise((resolve) => afterPendingIo(resolve));
}
