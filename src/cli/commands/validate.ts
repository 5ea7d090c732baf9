/**
 * `plc2mqtt validate -c gateway.yaml`: loads the config exactly as `run` would (references
 * resolved from this process's environment and files). Valid: one summary line on stdout,
 * exit 0. Invalid: the ConfigError propagates; the program prints its message (every issue
 * as `file:line:col: path: message`, one per line) on stderr once, and exits 1.
 */
import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

export function registerValidate(program: Command): void {
  program
    .command("validate")
    .description("check a config file; print every problem with its line and column")
    .requiredOption("-c, --config <file>", "the gateway config (YAML)")
    .action(async (opts: { config: string }) => {
      const { config, file } = await loadConfig(opts.config, process.env);
      const tags = config.devices.reduce((sum, device) => sum + device.tags.length, 0);
      process.stdout.write(
        `${file}: ok: gateway ${config.gateway.id}, ${plural(config.devices.length, "device")}, ${plural(tags, "tag")}\n`,
      );
    });
}
