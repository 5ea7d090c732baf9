/**
 * The OPC UA PLC simulator's lifecycle. Starting loads node-opcua, prepares the PKI under
 * pkiDir, builds the test stand and listens (port 0 = a free port). Values live in a
 * ValueStore that outlives restart(); restart() shuts the node-opcua server down and starts a
 * new one on the port actually bound, optionally with one more padding namespace registered
 * before namespaceUri so its index changes. close() is idempotent and leaves no timers,
 * sockets or file watchers. Invalid options, unknown variable names, wrong value types and
 * unknown status codes throw with context. With trustClientCertificates "none", an unknown
 * client certificate is refused the way refuseUntrustedClientsBy says (client-trust.ts).
 */
import { hostname } from "node:os";
import type { OPCUAServer, UAVariable } from "node-opcua";
import { buildStand, push, statusCodeOf } from "./address-space.ts";
import { type ClientRefusal, refuseUntrustedClients } from "./client-trust.ts";
import { specOf } from "./model.ts";
import {
  APPLICATION_NAME,
  APPLICATION_URI,
  openStores,
  readCertificateFile,
  serverCertificateFile,
} from "./pki.ts";
import { TestStandSchedule } from "./schedule.ts";
import { ValueStore } from "./store.ts";
import type { OpcuaSecurityMode, OpcuaSimulator, OpcuaSimulatorOptions } from "./types.ts";

type Opcua = typeof import("node-opcua");

/** The simulator's options: the public contract (types.ts) and the ones declared here. */
export interface OpcuaServerOptions extends OpcuaSimulatorOptions {
  /**
   * How a client certificate that is not trusted is refused, with trustClientCertificates
   * "none": "fault" (default) answers the open request with BadSecurityChecksFailed, as
   * node-opcua and the specification do; "close" closes the connection right after the open
   * request without an answer, as open62541 does. See client-trust.ts.
   */
  refuseUntrustedClientsBy?: ClientRefusal;
}

export const DEFAULT_NAMESPACE_URI = "urn:plc2mqtt:teststand";
const DEFAULT_SECURITY: OpcuaSecurityMode[] = ["None", "Sign", "SignAndEncrypt"];
const DEFAULT_POLICIES = ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"];
const WILDCARDS = new Set(["0.0.0.0", "::", ""]);

function fail(message: string): Error {
  return new RangeError(`OPC UA simulator: ${message}`);
}

function limit(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 0)
    throw fail(`${name} ${value}: expected an integer >= 0`);
  return value;
}

interface Running {
  server: OPCUAServer;
  variables: Map<string, UAVariable>;
  namespaceIndex: number;
}

export async function startOpcuaSimulator(options: OpcuaServerOptions): Promise<OpcuaSimulator> {
  if (typeof options.pkiDir !== "string" || options.pkiDir === "") {
    throw fail("pkiDir is required (the certificate stores live there)");
  }
  const host = options.host ?? "127.0.0.1";
  const advertised = WILDCARDS.has(host) ? hostname() : host;
  const namespaceUri = options.namespaceUri ?? DEFAULT_NAMESPACE_URI;
  const users = options.users ?? {};
  const allowAnonymous = options.allowAnonymous !== false;
  if (!allowAnonymous && Object.keys(users).length === 0) {
    throw fail("allowAnonymous: false needs at least one user");
  }
  const security = options.security ?? DEFAULT_SECURITY;
  if (security.length === 0) throw fail("security: offer at least one mode");
  const tickMs = options.tickMs ?? 0;
  if (!Number.isFinite(tickMs) || tickMs < 0) throw fail(`tickMs ${tickMs}: expected >= 0`);
  const minSupportedSampleRate = limit(options.minSupportedSampleRate, "minSupportedSampleRate");
  const operationLimits = {
    maxNodesPerRead: limit(options.maxNodesPerRead, "maxNodesPerRead"),
    maxMonitoredItemsPerCall: limit(options.maxMonitoredItemsPerCall, "maxMonitoredItemsPerCall"),
  };

  const userCertificates = options.trustedUserCertificates?.map(readCertificateFile);
  const refusal = options.refuseUntrustedClientsBy ?? "fault";
  if (refusal !== "fault" && refusal !== "close") {
    throw fail(`refuseUntrustedClientsBy ${refusal}: expected fault or close`);
  }
  const trustClients = options.trustClientCertificates !== "none";

  const opcua: Opcua = await import("node-opcua");
  const modes = security.map((mode) => {
    const value = opcua.MessageSecurityMode[mode];
    if (value === undefined)
      throw fail(`security mode ${mode}: expected None, Sign or SignAndEncrypt`);
    return value;
  });
  const policies = (options.policies ?? DEFAULT_POLICIES).map((name) => {
    const value = (opcua.SecurityPolicy as Record<string, string>)[name];
    if (value === undefined || name === "None" || name === "Invalid") {
      throw fail(`security policy ${name}: expected one of ${DEFAULT_POLICIES.join(", ")}, ...`);
    }
    return value as (typeof opcua.SecurityPolicy)["Basic256Sha256"];
  });
  if (security.includes("None")) policies.unshift(opcua.SecurityPolicy.None);

  const store = new ValueStore();
  statusCodeOf(opcua, store.entry("Types.StatusCode").value as string);
  const schedule = new TestStandSchedule(options.seed ?? 1, (name, value) =>
    store.write(name, value),
  );
  let running: Running | undefined;
  store.onChange = (name) => {
    const variable = running?.variables.get(name);
    if (variable !== undefined) push(opcua, variable, store.entry(name));
  };

  /** StatusCode values (also in a Types.Variant write) must be names node-opcua knows. */
  const checkStatusNames = (name: string, value: unknown): void => {
    const spec = specOf(name);
    const typed = value as { dataType?: unknown; value?: unknown } | null;
    if (spec.dataType === "StatusCode") statusCodeOf(opcua, value as string);
    else if (spec.dataType === "BaseDataType" && typed?.dataType === "StatusCode") {
      for (const v of [typed.value].flat()) statusCodeOf(opcua, v as string);
    }
  };

  let port = options.port ?? 0;
  let padding = 0;

  const launch = async (): Promise<Running> => {
    const stores = await openStores(
      opcua,
      options.pkiDir,
      advertised,
      trustClients,
      userCertificates,
    );
    const server = new opcua.OPCUAServer({
      port,
      host,
      hostname: advertised,
      serverCertificateManager: stores.server,
      userCertificateManager: stores.user,
      serverInfo: {
        applicationUri: APPLICATION_URI,
        productUri: APPLICATION_URI,
        applicationName: { text: APPLICATION_NAME, locale: "en" },
      },
      buildInfo: { productName: APPLICATION_NAME, manufacturerName: "plc2mqtt" },
      securityModes: modes,
      securityPolicies: policies,
      allowAnonymous,
      userManager: {
        isValidUser: (user: string, password: string) =>
          Object.hasOwn(users, user) && users[user] === password,
      },
      serverCapabilities: {
        operationLimits,
        ...(minSupportedSampleRate === undefined ? {} : { minSupportedSampleRate }),
      },
    });
    try {
      await server.initialize();
      const addressSpace = server.engine.addressSpace;
      if (addressSpace === null) throw new Error("node-opcua built no address space");
      if (!trustClients) refuseUntrustedClients(server, stores.server, refusal);
      for (let i = 1; i <= padding; i++)
        addressSpace.registerNamespace(`${namespaceUri}:padding:${i}`);
      const namespace = addressSpace.registerNamespace(namespaceUri);
      const { variables } = buildStand(
        opcua,
        namespace,
        addressSpace.rootFolder.objects,
        store.entries(),
      );
      await server.start();
      port = server.endpoints[0]?.port ?? port;
      return { server, variables, namespaceIndex: namespace.index };
    } catch (err) {
      await server.shutdown(0).catch(() => {});
      throw new Error(
        `OPC UA simulator: cannot listen on ${host}:${port}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  };

  const stop = async (): Promise<void> => {
    const current = running;
    running = undefined;
    if (current !== undefined) await current.server.shutdown(0);
  };

  running = await launch();
  const ticker = tickMs > 0 ? setInterval(() => schedule.advance(tickMs), tickMs) : undefined;
  let closing: Promise<void> | undefined;
  let restarting: Promise<void> | undefined;

  return {
    get endpointUrl() {
      return `opc.tcp://${advertised}:${port}`;
    },
    get port() {
      return port;
    },
    namespaceUri,
    get namespaceIndex() {
      if (running === undefined) throw fail("not running (closed, or restart() in progress)");
      return running.namespaceIndex;
    },
    serverCertificateFile: serverCertificateFile(options.pkiDir),
    set(name, value, opts = {}) {
      checkStatusNames(name, value);
      store.write(name, value, "Good", opts.sourceTimestamp);
    },
    setMany(values, opts = {}) {
      for (const [name, value] of Object.entries(values)) checkStatusNames(name, value);
      store.writeMany(values, opts.sourceTimestamp);
    },
    setStatus(name, statusCode) {
      statusCodeOf(opcua, statusCode);
      store.writeStatus(name, statusCode);
    },
    get(name) {
      return store.entry(name).value;
    },
    advance(ms) {
      schedule.advance(ms);
    },
    stallNotifications(on) {
      store.freeze(on);
    },
    counts() {
      const engine = running?.server.engine;
      // node-opcua keeps its sessions in ServerEngine._sessions; each counts its monitored items
      const sessions = (engine as unknown as { _sessions?: object } | undefined)?._sessions ?? {};
      const monitoredItems = Object.values(
        sessions as Record<string, { currentMonitoredItemCount?: number }>,
      ).reduce((n, session) => n + (session.currentMonitoredItemCount ?? 0), 0);
      return {
        sessions: engine?.currentSessionCount ?? 0,
        sessionsCreated: engine?.cumulatedSessionCount ?? 0,
        subscriptions: engine?.currentSubscriptionCount ?? 0,
        subscriptionsCreated: engine?.cumulatedSubscriptionCount ?? 0,
        monitoredItems,
      };
    },
    restart(opts = {}) {
      if (closing !== undefined) return Promise.reject(fail("restart() after close()"));
      restarting ??= (async () => {
        try {
          await stop();
          if (opts.renumberNamespace) padding += 1;
          running = await launch();
        } finally {
          restarting = undefined;
        }
      })();
      return restarting;
    },
    close() {
      closing ??= (async () => {
        if (ticker !== undefined) clearInterval(ticker);
        await restarting?.catch(() => {});
        await stop();
      })();
      return closing;
    },
  };
}
