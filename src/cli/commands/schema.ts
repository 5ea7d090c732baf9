/**
 * `plc2mqtt schema` prints the config's JSON Schema; `--write` writes it to
 * config/plc2mqtt.schema.json in the package root (found by walking up from this module to
 * plc2mqtt's package.json, so it works from src/ and from dist/src/).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { configJsonSchemaText, SCHEMA_FILE_NAME } from "../../config/json-schema.ts";

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string };
      if (name === "plc2mqtt") return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error("schema --write: cannot find the plc2mqtt package root");
    }
    dir = parent;
  }
}

export function registerSchema(program: Command): void {
  program
    .command("schema")
    .description("print the JSON Schema of the config file (for editors)")
    .option("--write", `write it to config/${SCHEMA_FILE_NAME} in the package instead`)
    .action((opts: { write?: boolean }) => {
      const text = configJsonSchemaText();
      if (!opts.write) {
        process.stdout.write(text);
        return;
      }
      const target = join(packageRoot(), "config", SCHEMA_FILE_NAME);
      writeFileSync(target, text);
      process.stdout.write(`wrote ${target}\n`);
    });
}
