/**
 * Durations ("250ms", "5s", "1m", "7d") and sizes ("512MiB", "1GB", "4096") as users write
 * them in YAML. Durations become milliseconds, sizes bytes.
 */
import { z } from "zod";

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i;

/** Milliseconds for a duration string, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION_RE.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2]!]!);
}

/** Bytes for a size string or number, or undefined when it is not one. */
export function parseSize(text: string | number): number | undefined {
  if (typeof text === "number") return Number.isInteger(text) && text >= 0 ? text : undefined;
  const match = SIZE_RE.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * SIZE_UNITS[(match[2] ?? "").toLowerCase()]!);
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of Object.entries(DURATION_UNITS).reverse()) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A zod schema for a duration between min and max milliseconds; its JSON Schema is a pattern. */
export function duration(opts: { min: number; max: number; description: string }) {
  return z
    .string({
      error: (issue) =>
        typeof issue.input === "number"
          ? `a duration needs its unit: ${issue.input}ms, ${issue.input}s or ${issue.input}m`
          : undefined,
    })
    .regex(DURATION_RE, "expected a duration such as 250ms, 5s, 1m, 2h or 7d")
    .transform((text, ctx) => {
      const ms = parseDuration(text)!;
      if (ms < opts.min || ms > opts.max) {
        ctx.addIssue({
          code: "custom",
          message: `must be between ${formatDuration(opts.min)} and ${formatDuration(opts.max)}`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .describe(opts.description);
}

const range = (opts: { min: number; max: number }) =>
  `must be between ${opts.min} and ${opts.max} bytes`;

/** A zod schema for a size in bytes (a number, or a string such as 512MiB or 1GB). */
export function size(opts: { min: number; max: number; description: string }) {
  return z
    .union([
      // bounded here too, so the JSON Schema refuses what validate refuses (issue 13 point 7)
      z.number().int().min(opts.min, range(opts)).max(opts.max, range(opts)),
      z.string().regex(SIZE_RE, "expected a size such as 512MiB or 1GB"),
    ])
    .transform((value, ctx) => {
      const bytes = parseSize(value);
      if (bytes === undefined || bytes < opts.min || bytes > opts.max) {
        ctx.addIssue({ code: "custom", message: range(opts) });
        return z.NEVER;
      }
      return bytes;
    })
    .describe(opts.description);
}
