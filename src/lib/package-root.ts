/**
 * The installed package's root folder (where package.json, config/ and simulators/ live),
 * found by walking up from this module, so it works from src/ and from dist/src/.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let cached: { root: string; version: string } | undefined;

function find(): { root: string; version: string } {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const { name, version } = JSON.parse(readFileSync(manifest, "utf8")) as {
        name?: string;
        version?: string;
      };
      if (name === "plc2mqtt") {
        cached = { root: dir, version: version ?? "0.0.0" };
        return cached;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the plc2mqtt package root");
    dir = parent;
  }
}

export function packageRoot(): string {
  return find().root;
}

export function packageVersion(): string {
  return find().version;
}
