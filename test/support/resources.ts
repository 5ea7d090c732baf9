/**
 * Counts of the handles a test may leak (sockets, timers, servers), to assert that a part left
 * nothing behind after close.
 */
const WATCHED = [
  "TCPSocketWrap",
  "TCPServerWrap",
  "Timeout",
  "TTYWrap",
  "PipeWrap",
  "FSReqCallback",
];

export function openHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (WATCHED.includes(kind)) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** Waits until the open handles are back to `baseline` (sockets close asynchronously). */
export async function expectHandlesBackTo(
  baseline: Record<string, number>,
  timeoutMs = 3000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let now = openHandles();
  while (Date.now() < deadline) {
    now = openHandles();
    if (WATCHED.every((k) => (now[k] ?? 0) <= (baseline[k] ?? 0))) return;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(
    `handles left open: before ${JSON.stringify(baseline)}, after ${JSON.stringify(now)}`,
  );
}

/** Polls `check` until it returns true or the time is up. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
