/**
 * One OPC UA connection: secure channel + session, opened with the device's security and
 * identity, or refused with an error an operator can act on.
 *
 * Invariants:
 * - Every node-opcua client gets its own certificate manager rooted at `<data_dir>/pki`
 *   (node-opcua disposes it on disconnect); unknown server certificates are never accepted
 *   automatically: node-opcua refuses them and writes them to rejected/, and the error names
 *   the `plc2mqtt pki trust` command that trusts it. File watchers are off; a fresh manager
 *   per connect sees certificates trusted since.
 * - node-opcua's own reconnection is off (maxRetry 0): a lost connection is reported through
 *   onLost() once, and the runner's backoff owns reconnecting. Failed connects throw.
 * - Mode None is explicit and warned about at every connect (an audit line, so the logger's
 *   repeat limiter never holds it back; issue 13); in a secure mode, the server and
 *   own certificates that expire within 30 days (or have expired) are warned about once per
 *   connect, each naming its subject, thumbprint and days left, before the session is opened.
 *   An own certificate put in own/ by the operator is used as it is (node-opcua takes the
 *   application URI of the session from it).
 * - A refused X.509 user identity names the certificate file, subject and thumbprint (never
 *   the key) and what to do about it.
 * - A failed connect is one line with the real cause (connect-failure.ts): a hung server is a
 *   timeout naming request_timeout; a secure channel refused by the server (closed right after
 *   the open request, or BadSecurityChecksFailed) names the gateway's certificate, its SHA-1
 *   thumbprint and application URI, and what to do on the server (OPCUA_CHANNEL_REFUSED).
 * - An abort during open() disconnects whatever was opened before rejecting with ABORTED.
 * - Passwords never reach a log line or an error message.
 */
import { readFileSync } from "node:fs";
import type { OPCUACertificateManager } from "node-opcua-certificate-manager";
import type {
  ClientSession,
  EndpointDescription,
  OPCUAClient,
  UserIdentityInfo,
} from "node-opcua-client";
import type { OpcuaDeviceConfig } from "../../config/schema/opcua.ts";
import { abortError, throwIfAborted } from "../../lib/abort.ts";
import { errorMessage, GatewayError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logger.ts";
import {
  causeOf,
  channelRefusedError,
  connectFailure,
  refusedOurCertificate,
} from "./connect-failure.ts";
import type { Opcua } from "./load.ts";
import {
  certificateDer,
  daysLeft,
  isTrusted,
  pkiPaths,
  subjectOf,
  thumbprintOf,
  trustCommand,
} from "./pki.ts";
import { chooseEndpoint, type OfferedEndpoint, policyName, type SecurityMode } from "./security.ts";

export const APPLICATION_NAME = "plc2mqtt";
const EXPIRY_WARNING_DAYS = 30;

export interface ConnectionOptions {
  opcua: Opcua;
  endpoint: string;
  security: { mode: SecurityMode; policy: string };
  auth: OpcuaDeviceConfig["auth"];
  pkiDir: string;
  requestTimeout: number;
  sessionTimeout: number;
  /** The config file, for the `pki trust -c` hint (else the hint uses --pki-dir). */
  configPath?: string;
  log: Logger;
  device: string;
}

export interface Limits {
  maxNodesPerRead: number;
  maxMonitoredItemsPerCall: number;
}

export interface Connection {
  client: OPCUAClient;
  session: ClientSession;
  namespaces: string[];
  limits: Limits;
  /** Why the connection is gone (undefined while it is up). */
  readonly lost: string | undefined;
  onLost(listener: (reason: string) => void): void;
  close(): Promise<void>;
}

/** Resolves with `work`, or rejects with ABORTED as soon as the signal fires. */
export function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => {}); // settles later, unobserved, after an abort
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** The gateway's certificate manager: rooted at pkiDir, trusting nothing unknown, no watchers. */
export function certificateManager(opcua: Opcua, pkiDir: string): OPCUACertificateManager {
  return new opcua.OPCUACertificateManager({
    rootFolder: pkiDir,
    automaticallyAcceptUnknownCertificate: false,
    disableFileWatchers: true,
  });
}

function makeClient(o: ConnectionOptions, mode: SecurityMode, policy: string): OPCUAClient {
  const { opcua } = o;
  return opcua.OPCUAClient.create({
    applicationName: APPLICATION_NAME,
    clientName: `${APPLICATION_NAME}-${o.device}`,
    securityMode: opcua.MessageSecurityMode[mode],
    securityPolicy: (opcua.SecurityPolicy as Record<string, string>)[policy] as never,
    clientCertificateManager: certificateManager(opcua, o.pkiDir),
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 1000 },
    requestedSessionTimeout: o.sessionTimeout,
    defaultTransactionTimeout: o.requestTimeout,
    transportTimeout: o.requestTimeout,
    keepSessionAlive: true,
    keepAliveInterval: Math.max(1000, Math.min(o.sessionTimeout / 3, 10_000)),
  });
}

function offered(opcua: Opcua, endpoints: readonly EndpointDescription[]): OfferedEndpoint[] {
  return endpoints.map((e) => {
    const mode = opcua.MessageSecurityMode[e.securityMode] as OfferedEndpoint["mode"];
    const cert = e.serverCertificate;
    return {
      mode,
      policy: policyName(e.securityPolicyUri),
      ...(cert && cert.length > 0 ? { serverCertificate: Buffer.from(cert) } : {}),
    };
  });
}

/** GetEndpoints over an unsecured discovery channel (allowed by every server). */
async function discover(o: ConnectionOptions, signal: AbortSignal): Promise<OfferedEndpoint[]> {
  const client = makeClient(o, "None", "None");
  try {
    await abortable(client.connect(o.endpoint), signal);
    return offered(o.opcua, await abortable(client.getEndpoints(), signal));
  } catch (err) {
    if (signal.aborted) throw abortError(signal);
    const failure = connectFailure(err, o.endpoint);
    throw new GatewayError(
      "OPCUA_CONNECT",
      `cannot reach OPC UA server ${o.endpoint}: ${failure.text}`,
      { cause: causeOf(err, failure) },
    );
  } finally {
    await client.disconnect().catch(() => {});
  }
}

/** One warning when a certificate expires within EXPIRY_WARNING_DAYS (or has expired). */
function warnExpiry(
  log: Logger,
  what: "server" | "own",
  der: Buffer | undefined,
  device: string,
  file?: string,
): void {
  if (der === undefined) return;
  try {
    const days = daysLeft(der);
    if (days < EXPIRY_WARNING_DAYS) {
      log.warn(
        {
          device,
          certificate: what,
          subject: subjectOf(der),
          thumbprint: thumbprintOf(der),
          days: Math.floor(days),
          ...(file === undefined ? {} : { file }),
        },
        days < 0 ? "certificate has expired" : "certificate expires within 30 days",
      );
    }
  } catch {
    // unreadable: node-opcua reports it when it matters
  }
}

/** The gateway's own certificate (DER), when it has one yet; node-opcua creates it. */
function ownCertificate(pkiDir: string): Buffer | undefined {
  try {
    return certificateDer(readFileSync(pkiPaths(pkiDir).ownCertificate));
  } catch {
    return undefined;
  }
}

function identity(o: ConnectionOptions): UserIdentityInfo {
  const { opcua, auth } = o;
  if (auth.type === "username") {
    return {
      type: opcua.UserTokenType.UserName,
      userName: auth.username,
      password: auth.password,
    };
  }
  if (auth.type === "certificate") {
    let certificateData: Buffer;
    let privateKey: string;
    try {
      certificateData = certificateDer(readFileSync(auth.cert));
      privateKey = readFileSync(auth.key, "utf8");
    } catch (err) {
      throw new GatewayError(
        "OPCUA_AUTH",
        `cannot read the X.509 user certificate ${auth.cert} or its key ${auth.key}`,
        { cause: err },
      );
    }
    return {
      type: opcua.UserTokenType.Certificate,
      certificateData,
      privateKey: privateKey as never,
    };
  }
  return { type: opcua.UserTokenType.Anonymous };
}

function who(auth: OpcuaDeviceConfig["auth"], ident: UserIdentityInfo): string {
  if (auth.type === "username") return `user ${auth.username}`;
  if (auth.type === "certificate" && "certificateData" in ident) {
    try {
      const der = Buffer.from(ident.certificateData);
      return `user certificate ${auth.cert} (${subjectOf(der)}, thumbprint ${thumbprintOf(der)})`;
    } catch {
      return `user certificate ${auth.cert}`;
    }
  }
  return "anonymous";
}

/** What an operator does about a refused X.509 user identity. */
function userCertificateHint(auth: OpcuaDeviceConfig["auth"], status: string): string {
  if (auth.type !== "certificate") return "";
  if (status === "BadUserSignatureInvalid")
    return `; the server rejects the signature: is ${auth.key} the key of this certificate?`;
  if (/^Bad(IdentityToken|UserAccessDenied|Certificate)/.test(status))
    return "; the server's administrator must trust this certificate in the server's user certificate store";
  return "";
}

/** Opens a secure channel and a session; throws a GatewayError an operator can act on. */
export async function openConnection(
  o: ConnectionOptions,
  signal: AbortSignal,
): Promise<Connection> {
  const { opcua, log, device } = o;
  let { mode, policy } = o.security;
  let serverCertificate: Buffer | undefined;
  if (mode === "None") {
    log.warn(
      { audit: "insecure connection", device, endpoint: o.endpoint },
      "OPC UA security mode None: traffic is neither signed nor encrypted",
    );
    policy = "None";
  } else {
    const chosen = chooseEndpoint(await discover(o, signal), { mode, policy }, o.endpoint);
    policy = chosen.policy;
    serverCertificate = chosen.serverCertificate;
    warnExpiry(log, "server", serverCertificate, device);
    // Absent before the very first connect (node-opcua creates it, fresh): nothing to warn.
    const own = pkiPaths(o.pkiDir).ownCertificate;
    warnExpiry(log, "own", ownCertificate(o.pkiDir), device, own);
  }
  throwIfAborted(signal);
  const ident = identity(o);
  const client = makeClient(o, mode, policy);
  let session: ClientSession | undefined;
  try {
    try {
      await abortable(client.connect(o.endpoint), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw connectError(o, serverCertificate, mode, policy, err);
    }
    try {
      session = await abortable(client.createSession(ident), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw sessionError(o, ident, err);
    }
    const values = await abortable(
      session.read([
        { nodeId: "i=2255", attributeId: opcua.AttributeIds.Value },
        { nodeId: "i=11705", attributeId: opcua.AttributeIds.Value },
        { nodeId: "i=11714", attributeId: opcua.AttributeIds.Value },
      ]),
      signal,
    );
    const namespaces = (values[0]?.value.value as string[] | null) ?? [];
    const limit = (i: number) => {
      const v = values[i]?.statusCode.isGood() ? Number(values[i]!.value.value) : 0;
      return Number.isFinite(v) && v > 0 ? v : 0;
    };
    log.info(
      { device, endpoint: o.endpoint, mode, policy, identity: o.auth.type },
      "OPC UA session open",
    );
    return track(client, session, namespaces, {
      maxNodesPerRead: limit(1),
      maxMonitoredItemsPerCall: limit(2),
    });
  } catch (err) {
    await session?.close().catch(() => {});
    await client.disconnect().catch(() => {});
    throw err;
  }
}

/** A refused session names the identity and status; a session that never came, the cause. */
function sessionError(o: ConnectionOptions, ident: UserIdentityInfo, err: unknown): GatewayError {
  const status = /Bad[A-Za-z]+/.exec(errorMessage(err))?.[0];
  if (status === undefined) {
    const failure = connectFailure(err, o.endpoint);
    return new GatewayError(
      "OPCUA_CONNECT",
      `cannot open a session on ${o.endpoint} for ${who(o.auth, ident)}: ${failure.text}`,
      { cause: causeOf(err, failure) },
    );
  }
  return new GatewayError(
    "OPCUA_AUTH",
    `${o.endpoint} refused the session for ${who(o.auth, ident)}: ${status}${userCertificateHint(o.auth, status)}`,
    { cause: err },
  );
}

function connectError(
  o: ConnectionOptions,
  serverCertificate: Buffer | undefined,
  mode: string,
  policy: string,
  err: unknown,
): GatewayError {
  if (serverCertificate !== undefined) {
    const thumbprint = thumbprintOf(serverCertificate);
    if (!isTrusted(o.pkiDir, thumbprint)) {
      return new GatewayError(
        "OPCUA_UNTRUSTED",
        `the server certificate of ${o.endpoint} (${subjectOf(serverCertificate)}, thumbprint ${thumbprint}) is not trusted; it was put in ${pkiPaths(o.pkiDir).rejected}. After checking it, trust it with: ${trustCommand(o.pkiDir, thumbprint, o.configPath)}`,
        { cause: err, details: { thumbprint } },
      );
    }
  }
  const failure = connectFailure(err, o.endpoint);
  if (mode !== "None" && refusedOurCertificate(failure)) {
    return channelRefusedError(
      {
        endpoint: o.endpoint,
        mode,
        policy,
        pkiDir: o.pkiDir,
        ...(o.configPath === undefined ? {} : { configPath: o.configPath }),
      },
      failure,
      err,
    );
  }
  return new GatewayError(
    "OPCUA_CONNECT",
    `cannot open a ${mode}/${policy} channel to ${o.endpoint}: ${failure.text}`,
    { cause: causeOf(err, failure) },
  );
}

function track(
  client: OPCUAClient,
  session: ClientSession,
  namespaces: string[],
  limits: Limits,
): Connection {
  let lost: string | undefined;
  const listeners: ((reason: string) => void)[] = [];
  let closing = false;
  const lose = (reason: string) => {
    if (lost !== undefined || closing) return;
    lost = reason;
    for (const l of listeners) l(reason);
  };
  client.on("connection_lost", () => lose("connection lost"));
  client.on("close", (err) =>
    lose(err ? `connection closed: ${err.message}` : "connection closed"),
  );
  session.on("session_closed", () => lose("session closed"));
  session.on("keepalive_failure", () => lose("session keep-alive failed"));
  return {
    client,
    session,
    namespaces,
    limits,
    get lost() {
      return lost;
    },
    onLost(listener) {
      listeners.push(listener);
    },
    async close() {
      if (closing) return;
      closing = true;
      lost ??= "closed";
      if (lost === "closed") await session.close().catch(() => {});
      await client.disconnect().catch(() => {});
    },
  };
}
