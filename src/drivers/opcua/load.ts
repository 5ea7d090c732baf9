/**
 * Loads node-opcua's client on first use only, once per process, and quiets it. A gateway
 * without an OPC UA device never loads it: nothing else in src/ imports node-opcua at run time
 * (type imports vanish from the build; test/drivers/opcua-lazy-load.test.ts checks a
 * Modbus-only `run`). Only the sub-packages the gateway uses are loaded, not the `node-opcua`
 * umbrella, which also loads the server, address space and nodesets (issue 12, measured on a
 * bare Node 24: umbrella +98 MB RSS and 30 MB heap; client and certificate manager +84 MB and
 * 23 MB). The simulators keep the umbrella: they need the server. node-opcua-client re-exports
 * the enums, services and loggers used here; the certificate manager is its own package.
 *
 * Quiet: node-opcua prints warnings and errors (certificate dumps, reconnection notes)
 * straight to the console, which would corrupt the daemon's JSON log on stdout and the CLI's
 * output. They are routed to the logger given to quietOpcua() at debug level instead; our own
 * code logs what an operator needs. Nothing outside src/drivers/opcua/ sees node-opcua types.
 */
import { format } from "node:util";
import type { Logger } from "../../lib/logger.ts";

export type Opcua = typeof import("node-opcua-client") &
  Pick<typeof import("node-opcua-certificate-manager"), "OPCUACertificateManager">;

let loading: Promise<Opcua> | undefined;
let sink: Logger | undefined;

function route(kind: string) {
  return (...args: unknown[]) => {
    sink?.debug({ opcua: format(...args).slice(0, 2000), kind }, "node-opcua message");
  };
}

/** node-opcua, loaded once; its console output goes to the logger set with quietOpcua(). */
export function loadOpcua(): Promise<Opcua> {
  loading ??= Promise.all([
    import("node-opcua-client"),
    import("node-opcua-certificate-manager"),
  ]).then(([client, { OPCUACertificateManager }]) => {
    client.setWarningLogger(route("warning"));
    client.setErrorLogger(route("error"));
    client.setDebugLogger(route("debug"));
    return { ...client, OPCUACertificateManager };
  });
  return loading;
}

/** Where node-opcua's own messages go (at debug level); the last caller wins. */
export function quietOpcua(log: Logger): void {
  sink = log;
}
