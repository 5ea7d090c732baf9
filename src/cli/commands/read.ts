/**
 * `plc2mqtt read`: one-shot reads for commissioning. A table for people, --json for scripts,
 * --decode to see every interpretation of a raw register range next to the HMI.
 */
import type { Command } from "commander";
import { readRawOnce, readTagsOnce } from "../../app/commission.ts";
import { loadConfig } from "../../config/load.ts";
import { formatInterpretations, interpretRegisters } from "../../drivers/modbus/decode-all.ts";
import type { TagSample } from "../../drivers/types.ts";
import { GatewayError } from "../../lib/errors.ts";
import { createLogger, secretValuesIn } from "../../lib/logger.ts";
import { formatTable } from "../format-table.ts";

interface ReadOptions {
  config: string;
  json?: boolean;
  decode?: string;
  count: string;
  unit?: string;
  logLevel: string;
}

export function registerRead(program: Command): void {
  program
    .command("read")
    .description("read tags of one device once and print value, quality and raw registers")
    .requiredOption("-c, --config <file>", "gateway config (YAML)")
    .argument("<device>", "device id from the config")
    .argument("[tags...]", "tag names (default: every tag of the device)")
    .option("--json", "print JSON (one object per tag) instead of a table")
    .option(
      "--decode <address>",
      "read a raw register range (e.g. HR100) and print every interpretation",
    )
    .option("--count <n>", "registers to read with --decode", "8")
    .option("--unit <id>", "unit id for --decode (default: the device's)")
    .option("--log-level <level>", "log level on stderr", "warn")
    .action(async (device: string, tags: string[], options: ReadOptions) => {
      const { config } = await loadConfig(options.config, process.env);
      const log = createLogger({ level: options.logLevel, secrets: secretValuesIn(config) });
      const controller = new AbortController();
      const onSignal = () => controller.abort(new Error("interrupted"));
      process.once("SIGINT", onSignal);
      try {
        const ctx = { signal: controller.signal, log };
        if (options.decode !== undefined) {
          const count = positiveInt(options.count, "--count", 125);
          const unitId =
            options.unit === undefined ? undefined : positiveInt(options.unit, "--unit", 255);
          const words = await readRawOnce(
            config,
            device,
            { address: options.decode, count, ...(unitId === undefined ? {} : { unitId }) },
            ctx,
          );
          process.stdout.write(
            options.json
              ? `${JSON.stringify({ address: options.decode, words, interpretations: interpretRegisters(words) })}\n`
              : `${formatInterpretations(words, options.decode, interpretRegisters(words))}\n`,
          );
          return;
        }
        const samples = await readTagsOnce(config, device, tags, {
          ...ctx,
          configPath: options.config,
        });
        process.stdout.write(options.json ? jsonLines(samples) : `${samplesTable(samples)}\n`);
        if (samples.some((s) => s.quality !== "good")) process.exitCode = 1;
      } finally {
        process.removeListener("SIGINT", onSignal);
      }
    });
}

function positiveInt(text: string, name: string, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new GatewayError("USAGE", `${name} must be a whole number from 0 to ${max}`);
  }
  return n;
}

function jsonLines(samples: readonly TagSample[]): string {
  return samples.map((s) => `${JSON.stringify(s)}\n`).join("");
}

function hex(raw: readonly number[] | undefined): string {
  return (raw ?? []).map((w) => w.toString(16).padStart(4, "0")).join(" ");
}

function samplesTable(samples: readonly TagSample[]): string {
  return formatTable(
    ["tag", "value", "quality", "raw (hex)", "reason"],
    samples.map((s) => [s.tag, JSON.stringify(s.value), s.quality, hex(s.raw), s.reason ?? ""]),
  );
}
