/**
 * `plc2mqtt run -c gateway.yaml`: the daemon. Logs JSON to stdout (journald). Speaks the
 * systemd service protocol when NOTIFY_SOCKET is set; SIGHUP reloads the config; SIGTERM and
 * SIGINT stop it in order, within --shutdown-timeout.
 */
import type { Command } from "commander";
import { Gateway } from "../../app/gateway.ts";
import { createServiceNotifier } from "../../app/service-notify.ts";
import { loadConfig } from "../../config/load.ts";
import { errorMessage, isGatewayError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/logger.ts";
import { printError } from "../exit.ts";
import { waitForSignal } from "../signals.ts";
import { VERSION } from "../version.ts";

/** sysexits EX_CONFIG: the unit's RestartPreventExitStatus stops restart loops on a bad config. */
const EXIT_CONFIG = 78;

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("run the gateway: read the PLCs, journal every event, publish to MQTT")
    .requiredOption("-c, --config <file>", "gateway config (YAML)")
    .option("--log-level <level>", "fatal, error, warn, info, debug or trace", "info")
    .option("--shutdown-timeout <ms>", "longest orderly shutdown before giving up", "10000")
    .action(async (options: { config: string; logLevel: string; shutdownTimeout: string }) => {
      let loaded: Awaited<ReturnType<typeof loadConfig>>;
      try {
        loaded = await loadConfig(options.config, process.env);
      } catch (err) {
        if (!isGatewayError(err, "CONFIG_INVALID")) throw err;
        printError(err);
        process.exitCode = EXIT_CONFIG;
        return;
      }
      const log = createLogger({ level: options.logLevel, destination: 1 });
      process.on("uncaughtException", (err) => {
        log.fatal({ err }, "uncaught exception; exiting for the service manager to restart");
        process.exit(70);
      });
      const notifier = createServiceNotifier({ env: process.env, pid: process.pid, log });
      const signalled = waitForSignal();
      const gateway = await Gateway.start({ config: loaded.config, log, version: VERSION });
      process.on("SIGHUP", () => {
        loadConfig(options.config, process.env)
          .then(({ config }) => gateway.reload(config))
          .catch((err: unknown) => {
            log.error(
              { audit: "config reload", err: errorMessage(err) },
              "config reload refused; the running config stays",
            );
          });
      });
      notifier.ready(`${loaded.config.devices.length} devices`);
      notifier.startWatchdog(() => gateway.alive(60_000));
      const signal = await signalled;
      log.info({ signal }, "shutting down");
      notifier.stopping();
      await gateway.stop(Number(options.shutdownTimeout));
      await notifier.drain();
    });
}
