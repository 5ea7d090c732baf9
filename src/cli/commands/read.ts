/**
 * `plc2mqtt read`: one-shot reads for commissioning. A table for people (a state tag's state
 * name beside its raw value; for Modbus, the read plan after the read, with the holes and
 * request sizes the device taught), --json for scripts, --decode to see every interpretation
 * of a raw register range next to the HMI. Arguments are checked before anything connects.
 */
import type { Command } from "commander";
import { findDevice, readRawOnce, readTagsOnce } from "../../app/commission.ts";
import { loadConfig } from "../../config/load.ts";
import { parseModbusAddress } from "../../config/modbus-address.ts";
import type { DeviceConfig } from "../../config/schema/root.ts";
import { formatInterpretations, interpretRegisters } from "../../drivers/modbus/decode-all.ts";
import type { TagSample } from "../../drivers/types.ts";
import { stateName } from "../../engine/index.ts";
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
    .action(async (device: string, tags: string[], options: ReadOptions, command: Command) => {
      const given = (name: string) => command.getOptionValueSource(name) === "cli";
      const { config } = await loadConfig(options.config, process.env);
      const log = createLogger({ level: options.logLevel, secrets: secretValuesIn(config) });
      const controller = new AbortController();
      const onSignal = () => controller.abort(new Error("interrupted"));
      process.once("SIGINT", onSignal);
      try {
        const ctx = { signal: controller.signal, log };
        if (options.decode !== undefined) {
          const range = decodeRange(findDevice(config, device), tags, options);
          const words = await readRawOnce(config, device, range, ctx);
          process.stdout.write(
            options.json
              ? `${JSON.stringify({ address: options.decode, words, interpretations: interpretRegisters(words) })}\n`
              : `${formatInterpretations(words, options.decode, interpretRegisters(words))}\n`,
          );
          return;
        }
        for (const name of ["count", "unit"]) {
          if (given(name)) throw new GatewayError("USAGE", `--${name} applies to --decode only`);
        }
        const states = statesOf(findDevice(config, device));
        let plan: readonly string[] = [];
        const samples = await readTagsOnce(config, device, tags, {
          ...ctx,
          configPath: options.config,
          onPlan: (lines) => {
            plan = lines;
          },
        });
        process.stdout.write(
          options.json
            ? jsonLines(samples, states)
            : `${samplesTable(samples, states)}\n${planText(plan)}`,
        );
        if (samples.some((s) => s.quality !== "good")) process.exitCode = 1;
      } finally {
        process.removeListener("SIGINT", onSignal);
      }
    });
}

/**
 * The raw range of --decode, checked before anything connects: --count from 1 to 125 (a read
 * of 0 registers is no read), --unit from 0 to 255, the range inside the 65536 addresses.
 */
function decodeRange(
  device: DeviceConfig,
  tags: readonly string[],
  options: ReadOptions,
): { address: string; count: number; unitId?: number } {
  if (tags.length > 0) {
    throw new GatewayError(
      "USAGE",
      `--decode reads a raw register range: give no tag names (got ${tags.join(", ")})`,
    );
  }
  const count = wholeNumber(options.count, "--count", 1, 125, "registers to read with --decode");
  const unitId =
    options.unit === undefined
      ? undefined
      : wholeNumber(options.unit, "--unit", 0, 255, "the Modbus unit id to read");
  if (device.protocol !== "opcua") {
    let offset: number | undefined;
    try {
      offset = parseModbusAddress(options.decode!, device.address_base).offset;
    } catch {
      // readRawOnce names what is wrong with the address
    }
    if (offset !== undefined && offset + count > 65_536) {
      throw new GatewayError(
        "USAGE",
        `--decode ${options.decode} --count ${count} runs past the last Modbus address 65535: read at most ${65_536 - offset} registers there`,
      );
    }
  }
  return { address: options.decode!, count, ...(unitId === undefined ? {} : { unitId }) };
}

function wholeNumber(text: string, name: string, min: number, max: number, what: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    throw new GatewayError(
      "USAGE",
      `${name} must be a whole number from ${min} to ${max} (${what}), got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

/** The states of the device's state tags, by tag name. */
function statesOf(device: DeviceConfig): Map<string, Record<string, string>> {
  const states = new Map<string, Record<string, string>>();
  for (const tag of device.tags) if (tag.states) states.set(tag.name, tag.states);
  return states;
}

/** A state tag's state name for a good value, else undefined. */
function stateOf(
  sample: TagSample,
  states: ReadonlyMap<string, Record<string, string>>,
): string | undefined {
  const map = states.get(sample.tag);
  if (map === undefined || sample.quality === "bad" || sample.value === null) return undefined;
  return stateName(map, sample.value);
}

function planText(plan: readonly string[]): string {
  if (plan.length === 0) return "";
  return `\nread plan:\n${plan.map((line) => `  ${line}\n`).join("")}`;
}

function jsonLines(
  samples: readonly TagSample[],
  states: ReadonlyMap<string, Record<string, string>>,
): string {
  return samples
    .map((s) => {
      const state = stateOf(s, states);
      return `${JSON.stringify(state === undefined ? s : { ...s, state })}\n`;
    })
    .join("");
}

function hex(raw: readonly number[] | undefined): string {
  return (raw ?? []).map((w) => w.toString(16).padStart(4, "0")).join(" ");
}

function samplesTable(
  samples: readonly TagSample[],
  states: ReadonlyMap<string, Record<string, string>>,
): string {
  return formatTable(
    ["tag", "value", "quality", "raw (hex)", "reason"],
    samples.map((s) => {
      const state = stateOf(s, states);
      const value = JSON.stringify(s.value);
      return [
        s.tag,
        state === undefined ? value : `${value} (${state})`,
        s.quality,
        hex(s.raw),
        s.reason ?? "",
      ];
    }),
  );
}
