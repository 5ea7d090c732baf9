/**
 * The fixed-rate schedule of a poll loop (the driver runner on the main thread, a Modbus
 * device's I/O thread): after a poll, when the next one is due, and how many poll times the
 * poll ran past (passed over, counted, not made up).
 *
 * `phase` > 0 (Modbus spread_requests): the poll just made was the first, made at once, and the
 * next falls at the group's place in the interval, `phase` after the first's due time (or the
 * first such place after now, not counted as passed over, when the first poll ran past it).
 */
export function nextDue(
  due: number,
  now: number,
  interval: number,
  phase = 0,
): { due: number; skipped: number } {
  let next = due + (phase > 0 ? phase : interval);
  if (phase > 0 && next < now) next += Math.ceil((now - next) / interval) * interval;
  const skipped = next < now ? Math.ceil((now - next) / interval) : 0;
  return { due: next + skipped * interval, skipped };
}
