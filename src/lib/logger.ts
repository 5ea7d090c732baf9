import { pino } from "pino";

export type Logger = pino.Logger;

/** Paths pino removes from every log line: passwords, keys and tokens never reach a log. */
export const REDACT_PATHS = [
  "password",
  "*.password",
  "*.*.password",
  "passphrase",
  "*.passphrase",
  "key",
  "*.key",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "authorization",
  "*.authorization",
];

export interface LoggerOptions {
  level?: string;
  /** A stream, or a file descriptor: 1 stdout (the daemon, for journald), 2 stderr (default). */
  destination?: pino.DestinationStream | 1 | 2;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { name: "plc2mqtt" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    typeof options.destination === "object"
      ? options.destination
      : pino.destination({ dest: options.destination ?? 2, sync: false }),
  );
}

/** A logger that drops everything: for library use and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
