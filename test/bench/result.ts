/** One benchmark number, printed as one JSON object per line by `npm run bench`. */
export interface BenchResult {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  /** What the number is held to, when it is held to something. */
  target?: string;
  pass?: boolean;
}
