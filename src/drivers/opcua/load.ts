/**
 * Loads node-opcua on first use only (it costs ~70 MB and ~0.5 s), once per process, and
 * quiets it: node-opcua prints warnings and errors (certificate dumps, reconnection notes)
 * straight to the console, which would corrupt the daemon's JSON log on stdout and the CLI's
 * output. They are routed to the logger given to quietOpcua() at debug level instead; our own
 * code logs what an operator needs. Nothing outside src/drivers/opcua/ sees node-opcua types.
 */
import { format } from "node:util";
import type { Logger } from "../../lib/logger.ts";

export type Opcua = typeof import("node-opcua");

let loading: Promise<Opcua> | undefined;
let sink: Logger | undefined;

function route(kind: string) {
  return (...args: unknown[]) => {
    sink?.debug({ opcua: format(...args).slice(0, 2000), kind }, "node-opcua message");
  };
}

/** node-opcua, loaded once; its console output goes to the logger set with quietOpcua(). */
export function loadOpcua(): Promise<Opcua> {
  loading ??= import("node-opcua").then((opcua) => {
    opcua.setWarningLogger(route("warning"));
    opcua.setErrorLogger(route("error"));
    opcua.setDebugLogger(route("debug"));
    return opcua;
  });
  return loading;
}

/** Where node-opcua's own messages go (at debug level); the last caller wins. */
export function quietOpcua(log: Logger): void {
  sink = log;
}
