/**
 * `plc2mqtt run -c gateway.yaml`: the daemon.
 *
 * - Logs: pino to stdout; JSON (for journald) unless stdout is a terminal (pretty), or as
 *   --log-format says. Quiet at info. The same warning repeated is logged at most once per
 *   --log-repeat-interval with a count of the repeats held back. Resolved secrets of the config
 *   are cut out of every line.
 * - systemd: speaks the service protocol when NOTIFY_SOCKET is set (READY, WATCHDOG,
 *   RELOADING, STOPPING); sends nothing and spawns nothing otherwise.
 * - SIGHUP reloads the config: a valid one is applied (the gateway logs an audit line of what
 *   changed); an invalid one is refused with every problem in an audit line, and the running
 *   config stays. SIGHUPs before the gateway runs or during shutdown are ignored (logged).
 * - SIGTERM and SIGINT stop it in order, within --shutdown-timeout.
 * - Exit codes: 0 clean stop; 78 (sysexits EX_CONFIG) config invalid or unreadable at start:
 *   restarting cannot help; 70 an uncaught exception (the service manager restarts it).
 */
import { type Command, Option } from "commander";
import { Gateway } from "../../app/gateway.ts";
import { createServiceNotifier } from "../../app/service-notify.ts";
import { ConfigError, formatIssue } from "../../config/errors.ts";
import { loadConfig } from "../../config/load.ts";
import { errorMessage, GatewayError, isGatewayError } from "../../lib/errors.ts";
import { createLogger, LOG_LEVELS, type LogFormat, secretValuesIn } from "../../lib/logger.ts";
import { printError } from "../exit.ts";
import { waitForSignal } from "../signals.ts";
import { VERSION } from "../version.ts";

/** sysexits EX_CONFIG: the unit's RestartPreventExitStatus stops restart loops on a bad config. */
const EXIT_CONFIG = 78;
/** sysexits EX_SOFTWARE. */
const EXIT_INTERNAL = 70;

interface RunOptions {
  config: string;
  logLevel: string;
  logFormat: "auto" | LogFormat;
  logRepeatInterval: string;
  shutdownTimeout: string;
}

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("run the gateway: read the PLCs, journal every event, publish to MQTT")
    .requiredOption("-c, --config <file>", "gateway config (YAML)")
    .addOption(
      new Option("--log-level <level>", "least severe level logged")
        .choices(LOG_LEVELS)
        .default("info"),
    )
    .addOption(
      new Option(
        "--log-format <format>",
        "json lines, or pretty for people (auto: pretty on a terminal)",
      )
        .choices(["auto", "json", "pretty"])
        .default("auto"),
    )
    .option(
      "--log-repeat-interval <ms>",
      "log the same warning at most once per this many ms, counting the repeats (0: every one)",
      "60000",
    )
    .option("--shutdown-timeout <ms>", "longest orderly shutdown before giving up", "10000")
    .action(async (options: RunOptions) => {
      const repeatIntervalMs = nonNegative(options.logRepeatInterval, "--log-repeat-interval");
      const shutdownTimeout = nonNegative(options.shutdownTimeout, "--shutdown-timeout");
      let loaded: Awaited<ReturnType<typeof loadConfig>>;
      try {
        loaded = await loadConfig(options.config, process.env);
      } catch (err) {
        if (!isGatewayError(err, "CONFIG_INVALID") && !isGatewayError(err, "CONFIG_READ"))
          throw err;
        printError(err);
        process.exitCode = EXIT_CONFIG;
        return;
      }
      const secrets = secretValuesIn(loaded.config);
      const format =
        options.logFormat === "auto"
          ? process.stdout.isTTY
            ? "pretty"
            : "json"
          : options.logFormat;
      const log = createLogger({
        level: options.logLevel,
        destination: 1,
        format,
        secrets,
        repeatIntervalMs,
      });
      process.on("uncaughtException", (err) => {
        log.fatal({ err }, "uncaught exception; exiting for the service manager to restart");
        process.exit(EXIT_INTERNAL);
      });

      // From here on SIGHUP never kills the process (its default action).
      let onHangup = () => log.warn({}, "SIGHUP ignored: the gateway is not running");
      const hangup = () => onHangup();
      process.on("SIGHUP", hangup);
      const notifier = createServiceNotifier({ env: process.env, pid: process.pid, log });
      const signalled = waitForSignal();
      let gateway: Gateway;
      try {
        gateway = await Gateway.start({
          config: loaded.config,
          configPath: options.config,
          log,
          version: VERSION,
        });
      } catch (err) {
        // a config the parts refuse is still a config error: no restart loop under systemd
        if (!isGatewayError(err, "CONFIG_INVALID")) throw err;
        printError(err);
        process.exitCode = EXIT_CONFIG;
        process.removeListener("SIGHUP", hangup);
        return;
      }

      const status = (devices: number) => `${devices} devices`;
      let reloads: Promise<void> = Promise.resolve();
      onHangup = () => {
        reloads = reloads.then(async () => {
          notifier.reloading();
          try {
            const next = await loadConfig(options.config, process.env);
            secretValuesIn(next.config, secrets);
            const report = await gateway.reload(next.config);
            notifier.ready(status(next.config.devices.length));
            if (report.needsRestart.length > 0)
              log.warn(
                { sections: report.needsRestart },
                "config sections changed that only a restart applies",
              );
          } catch (err) {
            log.error(
              refusal(options.config, err),
              "config reload refused; the running config stays",
            );
            notifier.ready();
          }
        });
      };

      notifier.ready(status(loaded.config.devices.length));
      notifier.startWatchdog((stuckAfterMs) => gateway.alive(stuckAfterMs));
      const signal = await signalled;
      onHangup = () => log.warn({}, "SIGHUP ignored: shutting down");
      log.info({ signal }, "shutting down");
      notifier.stopping();
      // a reload in progress is waited for inside stop(), within the shutdown timeout
      await gateway.stop(shutdownTimeout);
      await notifier.drain();
      process.removeListener("SIGHUP", hangup);
    });
}

/** The audit line of a refused reload: every problem, each with file, line and column. */
function refusal(file: string, err: unknown): Record<string, unknown> {
  if (err instanceof ConfigError)
    return { audit: "config reload", file, problems: err.issues.map(formatIssue) };
  return { audit: "config reload", file, err: errorMessage(err) };
}

function nonNegative(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0)
    throw new GatewayError(
      "USAGE",
      `${flag} takes a number of milliseconds, not ${JSON.stringify(text)}`,
    );
  return value;
}
