import { z } from "zod";
import { duration, formatDuration } from "../units.ts";

/** Ids users give to gateways, devices and tags: they end up in topics and event sources. */
export const identifier = (what: string) =>
  z
    .string()
    .min(1)
    .max(64)
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
      `${what} must start with a letter or digit and use only letters, digits, _, . and -`,
    );

/** Asset context carried by every event of a device (ISA-95 levels). */
export const assetContext = {
  site: z.string().min(1).max(64).optional().describe("Site (ISA-95 enterprise site)"),
  area: z.string().min(1).max(64).optional().describe("Area within the site"),
  line: z.string().min(1).max(64).optional().describe("Production line within the area"),
  equipment: z.string().min(1).max(64).optional().describe("Equipment or cell on the line"),
};

/** reconnect_min and reconnect_max: exponential backoff with full jitter between them. */
export function reconnectFields(what: string, minDefault: number) {
  return {
    reconnect_min: duration({
      min: 10,
      max: 600_000,
      description: `First reconnect delay after ${what} fails (default ${formatDuration(minDefault)})`,
    }).default(minDefault),
    reconnect_max: duration({
      min: 100,
      max: 3_600_000,
      description: "Longest reconnect delay (default 30s)",
    }).default(30_000),
  };
}

/** A secret: must be a ${env:NAME} or ${file:/path} reference, never the secret itself. */
export const secretRef = (what: string) =>
  z
    .string()
    .regex(
      /^\$\{(env|file):[^}]+\}$/,
      `${what} must come from \${env:NAME} or \${file:/path}, never written in the YAML`,
    )
    .describe(`${what}, as \${env:NAME} or \${file:/path}`);
