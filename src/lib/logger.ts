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
  destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { name: "plc2mqtt" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that drops everything: for library use and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
