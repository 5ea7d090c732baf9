/**
 * The public contract of the OPC UA PLC simulator: what tests and the CLI may rely on. Nothing
 * here imports node-opcua, so importing the contract costs nothing; the server itself is
 * loaded on the first startOpcuaSimulator() call.
 */
import type { LocalizedTextValue, ScalarValue, SimValue, TypedValue } from "./model.ts";

export type { LocalizedTextValue, ScalarValue, SimValue, TypedValue };

export interface SetOptions {
  /**
   * The source timestamp to give the value (default now): a PLC that stamps its values
   * itself, or several changes of one publishing interval with distinct source times.
   */
  sourceTimestamp?: Date;
}

export type OpcuaSecurityMode = "None" | "Sign" | "SignAndEncrypt";

export interface OpcuaSimulatorOptions {
  /** TCP port; 0 = a free port (default). restart() keeps the port actually bound. */
  port?: number;
  /**
   * Address to listen on, default 127.0.0.1. It is also the host name in the endpoint urls,
   * except for a wildcard (0.0.0.0, ::): then the machine's host name is advertised.
   */
  host?: string;
  /**
   * Required. Every certificate store lives under here: `server/` (the server's own
   * certificate and key, trusted/ and rejected/ client certificates) and `user/` (X509 user
   * tokens). The server certificate is created once and reused by later starts.
   */
  pkiDir: string;
  /** Security modes offered as endpoints; default all three. */
  security?: OpcuaSecurityMode[];
  /** Policies for Sign / SignAndEncrypt; default Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss. */
  policies?: string[];
  /** User name -> password for UserName tokens. */
  users?: Record<string, string>;
  /** Anonymous sessions are allowed unless this is false. */
  allowAnonymous?: boolean;
  /** Default "urn:plc2mqtt:teststand". */
  namespaceUri?: string;
  /** Schedule seed: same seed and same time advanced give the same values. Default 1. */
  seed?: number;
  /** Advance the schedule in real time every tickMs; 0 or undefined = manual (advance()). */
  tickMs?: number;
  /** "all" (default) accepts any client certificate; "none" rejects unknown ones into server/rejected/. */
  trustClientCertificates?: "all" | "none";
  /**
   * PEM or DER files of X.509 user certificates (X509IdentityToken) to trust: put in
   * user/trusted/ at every start. When given, any other user certificate is refused
   * (BadIdentityTokenRejected) and put in user/rejected/; when absent, user certificates are
   * accepted or not like client certificates (trustClientCertificates).
   */
  trustedUserCertificates?: string[];
  /**
   * Advertised MinSupportedSampleRate, in ms (default node-opcua's, 100). A monitored item that
   * asks for sampling interval 0 is revised to it, and node-opcua coalesces the changes inside
   * that window (the first at once, the latest at the window's end). 0 delivers every change,
   * each with its own source timestamp: several values of one variable in one publish response.
   */
  minSupportedSampleRate?: number;
  /** Advertised in ServerCapabilities.OperationLimits and enforced (BadTooManyOperations). 0 = no limit. */
  maxNodesPerRead?: number;
  maxMonitoredItemsPerCall?: number;
}

export interface OpcuaSimulator {
  /** opc.tcp://<host>:<port> (no resource path). */
  readonly endpointUrl: string;
  readonly port: number;
  readonly namespaceUri: string;
  /** The index namespaceUri has now (changes with restart({ renumberNamespace: true })). */
  readonly namespaceIndex: number;
  /** PEM file of the server certificate (copy it into a client's trusted/certs/). */
  readonly serverCertificateFile: string;
  /**
   * Sets a variable by name (see model.ts) with status Good and a fresh source timestamp (or
   * the one given). Types.Variant (DataType BaseDataType) takes a TypedValue, so a test can send
   * any built-in type but Boolean, or an array:
   * `set("Types.Variant", { dataType: "Double", value: 58.7 })`.
   * Synchronous: the monitored items of the node are notified before it returns, so values set
   * in one synchronous run of code reach a subscription in the same publish response.
   */
  set(name: string, value: unknown, options?: SetOptions): void;
  /**
   * Sets several variables in one PLC cycle ({ BatchId: "B2", ResultReady: true }): status
   * Good and the same source timestamp for all, nodes updated in the order given, synchronously
   * (no Read or sampling can see some of them changed and not the others). Checks every value
   * first: one wrong name or value throws and writes none.
   */
  setMany(values: Record<string, unknown>, options?: SetOptions): void;
  /** Sets a variable's status code by name ("BadSensorFailure"); the value stays. */
  setStatus(name: string, statusCode: string): void;
  get(name: string): SimValue;
  /** Moves schedule time forward (manual mode; also allowed alongside real-time ticks). */
  advance(ms: number): void;
  /** Stops and starts on the same port; values survive. */
  restart(opts?: { renumberNamespace?: boolean }): Promise<void>;
  /**
   * While on, the address space is frozen: set(), setStatus() and the schedule update the
   * simulator's values (get() sees them) but not the OPC UA nodes, so neither Read nor any
   * subscription sees a change; sessions, keep-alives and publish responses go on as usual
   * (a PLC whose values stopped updating, not a dead server). Off pushes every value that
   * changed meanwhile, once, with the source timestamp of its last change. (A restart() while
   * frozen builds the new address space from the current values.)
   */
  stallNotifications(on: boolean): void;
  /**
   * What the server holds now, and has created since this start (a restart() starts over):
   * to check at the server that a client kept its session and subscription.
   */
  counts(): SimulatorCounts;
  /** Idempotent: closes the server, its sockets, timers and certificate stores. */
  close(): Promise<void>;
}

export interface SimulatorCounts {
  /** Sessions open now. */
  sessions: number;
  /** Sessions created since this start. */
  sessionsCreated: number;
  /** Subscriptions alive now. */
  subscriptions: number;
  /** Subscriptions created since this start. */
  subscriptionsCreated: number;
  /** Monitored items of every session now. */
  monitoredItems: number;
}
