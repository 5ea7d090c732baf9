/** `plc2mqtt run -c gateway.yaml`: the daemon. Logs JSON to stdout (journald). */
import type { Command } from "commander";
import { Gateway } from "../../app/gateway.ts";
import { loadConfig } from "../../config/load.ts";
import { createLogger } from "../../lib/logger.ts";
import { waitForSignal } from "../signals.ts";
import { VERSION } from "../version.ts";

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("run the gateway: read the PLCs, journal every event, publish to MQTT")
    .requiredOption("-c, --config <file>", "gateway config (YAML)")
    .option("--log-level <level>", "fatal, error, warn, info, debug or trace", "info")
    .option("--shutdown-timeout <ms>", "longest orderly shutdown before giving up", "10000")
    .action(async (options: { config: string; logLevel: string; shutdownTimeout: string }) => {
      const { config } = await loadConfig(options.config, process.env);
      const log = createLogger({ level: options.logLevel, destination: 1 });
      process.on("uncaughtException", (err) => {
        log.fatal({ err }, "uncaught exception; exiting for the service manager to restart");
        process.exit(70);
      });
      const signalled = waitForSignal();
      const gateway = await Gateway.start({ config, log, version: VERSION });
      const signal = await signalled;
      log.info({ signal }, "shutting down");
      await gateway.stop(Number(options.shutdownTimeout));
    });
}
