import { z } from "zod";

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
