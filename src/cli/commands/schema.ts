/**
 * `plc2mqtt schema` prints the config's JSON Schema; `--write` writes it to
 * config/plc2mqtt.schema.json in the package root (found by walking up from this module to
 * plc2mqtt's package.json, so it works from src/ and from dist/src/); `--path` prints where
 * that file is, for an editor's `# yaml-language-server: $schema=<path>` line (after
 * systemd/install.sh: /opt/plc2mqtt/lib/node_modules/plc2mqtt/config/plc2mqtt.schema.json).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { configJsonSchemaText, SCHEMA_FILE_NAME } from "../../config/json-schema.ts";
import { GatewayError } from "../../lib/errors.ts";
import { packageRoot } from "../../lib/package-root.ts";

export function registerSchema(program: Command): void {
  program
    .command("schema")
    .description("print the JSON Schema of the config file (for editors)")
    .option("--write", `write it to config/${SCHEMA_FILE_NAME} in the package instead`)
    .option("--path", `print the path of the package's config/${SCHEMA_FILE_NAME} (for $schema=)`)
    .action((opts: { write?: boolean; path?: boolean }) => {
      const target = join(packageRoot(), "config", SCHEMA_FILE_NAME);
      if (opts.write && opts.path)
        throw new GatewayError("USAGE", "--write and --path exclude each other");
      if (opts.path) {
        process.stdout.write(`${target}\n`);
        return;
      }
      const text = configJsonSchemaText();
      if (!opts.write) {
        process.stdout.write(text);
        return;
      }
      writeFileSync(target, text);
      process.stdout.write(`wrote ${target}\n`);
    });
}
