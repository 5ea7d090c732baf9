/**
 * Loaded with `node --import` into a gateway under test: records the name of every package
 * under node_modules that the process resolves (import or require), and writes them, one a
 * line, to the file named by LOADED_PACKAGES_OUT when the process exits. Used by
 * opcua-lazy-load.test.ts to see what a running gateway really loaded.
 */
import { writeFileSync } from "node:fs";
import { registerHooks } from "node:module";

const out = process.env.LOADED_PACKAGES_OUT;
if (out === undefined) throw new Error("LOADED_PACKAGES_OUT names no file");
const seen = new Set<string>();

registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(resolved.url);
    if (m) seen.add(m[1]!);
    return resolved;
  },
});

process.on("exit", () => writeFileSync(out, [...seen].sort().join("\n")));
