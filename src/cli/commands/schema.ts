/**
 * `plc2mqtt schema` prints the config's JSON Schema; `--write` writes it to
 * config/plc2mqtt.schema.json in the package root (found by walking up from this module to
 * plc2mqtt's package.json, so it works from src/ and from dist/src/).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { configJsonSchemaText, SCHEMA_FILE_NAME } from "../../config/json-schema.ts";
import { packageRoot } from "../../lib/package-root.ts";

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
