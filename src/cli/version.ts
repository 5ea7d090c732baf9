import { packageVersion } from "../lib/package-root.ts";

export const VERSION = packageVersion();
