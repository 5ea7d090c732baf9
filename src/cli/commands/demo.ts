/** `plc2mqtt demo`: the first thing a new user runs. */
import type { Command } from "commander";
import { startDemo } from "../../app/demo.ts";
import { createLogger } from "../../lib/logger.ts";
import { waitForSignal } from "../signals.ts";
import { VERSION } from "../version.ts";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("simulated packaging line + embedded MQTT broker + gateway, events printed live")
    .option("--mqtt <url>", "publish to this broker instead of the embedded one")
    .option("--log-level <level>", "gateway log level (on stderr)", "warn")
    .action(async (options: { mqtt?: string; logLevel: string }) => {
      const log = createLogger({ level: options.logLevel, repeatIntervalMs: 60_000 });
      const signalled = waitForSignal();
      const demo = await startDemo({
        ...(options.mqtt === undefined ? {} : { mqttUrl: options.mqtt }),
        log,
        version: VERSION,
        color: process.stdout.isTTY === true,
        env: process.env,
        write: (line) => process.stdout.write(`${line}\n`),
      });
      await signalled;
      process.stdout.write("stopping...\n");
      await demo.stop();
    });
}
