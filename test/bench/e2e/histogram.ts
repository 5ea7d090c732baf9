/**
 * A latency histogram cheap enough for 100k samples/s: fixed bins (0.1 ms to 100 ms, 1 ms to
 * 1 s, 10 ms to 10 s, 1 s to 1 h, then one overflow bin), counts in a plain array so that it
 * crosses process boundaries as JSON. Quantiles are read off the bins (the bin's middle), so
 * a figure is good to the bin width: 0.1 ms under 100 ms.
 */
export const BINS = 1000 + 900 + 900 + 3590 + 1;

export function binOf(ms: number): number {
  if (!(ms >= 0)) return 0;
  if (ms < 100) return Math.floor(ms * 10);
  if (ms < 1000) return 1000 + Math.floor(ms - 100);
  if (ms < 10_000) return 1900 + Math.floor((ms - 1000) / 10);
  if (ms < 3_600_000) return 2800 + Math.floor((ms - 10_000) / 1000);
  return BINS - 1;
}

function binMiddle(i: number): number {
  if (i < 1000) return i / 10 + 0.05;
  if (i < 1900) return 100 + (i - 1000) + 0.5;
  if (i < 2800) return 1000 + (i - 1900) * 10 + 5;
  if (i < BINS - 1) return 10_000 + (i - 2800) * 1000 + 500;
  return 3_600_000;
}

export function emptyHistogram(): number[] {
  return new Array<number>(BINS).fill(0);
}

/** later - earlier, bin by bin: the histogram of one measuring window. */
export function difference(later: readonly number[], earlier: readonly number[]): number[] {
  return later.map((n, i) => n - (earlier[i] ?? 0));
}

/** Quantile q (0..1) in ms; undefined when the histogram is empty. */
export function quantile(h: readonly number[], q: number): number | undefined {
  const total = h.reduce((a, b) => a + b, 0);
  if (total <= 0) return undefined;
  const target = q * total;
  let seen = 0;
  for (let i = 0; i < h.length; i++) {
    seen += h[i]!;
    if (seen >= target) return binMiddle(i);
  }
  return binMiddle(h.length - 1);
}

/** Least-squares slope of ys over xs (per unit of x); 0 with fewer than 3 points. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 3) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}
