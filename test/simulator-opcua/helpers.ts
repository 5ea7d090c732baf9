/**
 * Test helpers for the OPC UA simulator: one temporary folder per test file holding the
 * simulator's PKI and a client PKI, and a node-opcua client that trusts the simulator's
 * certificate explicitly (copied into the client's trusted/certs/ before its store is opened,
 * the way an operator trusts a server), never by auto-acceptance.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AttributeIds,
  type ClientSession,
  type DataValue,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
  type UserIdentityInfo,
  UserTokenType,
} from "node-opcua";
import type { OpcuaSimulator } from "../../simulators/opcua/index.ts";

export interface Pki {
  dir: string;
  simPki: string;
  /** Opens the client store, trusting `serverCertificateFile` first (call once per file). */
  clientStore(serverCertificateFile: string): Promise<OPCUACertificateManager>;
  cleanup(): Promise<void>;
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-opcua-sim-"));
  let store: OPCUACertificateManager | undefined;
  return {
    dir,
    simPki: join(dir, "sim"),
    async clientStore(serverCertificateFile) {
      if (store !== undefined) return store;
      const root = join(dir, "client");
      mkdirSync(join(root, "trusted", "certs"), { recursive: true });
      copyFileSync(serverCertificateFile, join(root, "trusted", "certs", "simulator.pem"));
      store = new OPCUACertificateManager({
        rootFolder: root,
        automaticallyAcceptUnknownCertificate: false,
        disableFileWatchers: true,
      });
      await store.initialize();
      return store;
    },
    async cleanup() {
      await store?.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Connected {
  client: OPCUAClient;
  session: ClientSession;
  close(): Promise<void>;
}

export interface ConnectOptions {
  mode?: "None" | "Sign" | "SignAndEncrypt";
  policy?: "None" | "Basic256Sha256" | "Aes128_Sha256_RsaOaep" | "Aes256_Sha256_RsaPss";
  user?: { name: string; password: string };
}

export async function connect(
  sim: OpcuaSimulator,
  store: OPCUACertificateManager,
  options: ConnectOptions = {},
): Promise<Connected> {
  const mode = options.mode ?? "None";
  const client = OPCUAClient.create({
    applicationName: "plc2mqtt-sim-test",
    securityMode: MessageSecurityMode[mode],
    securityPolicy: SecurityPolicy[options.policy ?? (mode === "None" ? "None" : "Basic256Sha256")],
    clientCertificateManager: store,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    requestedSessionTimeout: 10_000,
  });
  await client.connect(sim.endpointUrl);
  const identity: UserIdentityInfo =
    options.user === undefined
      ? { type: UserTokenType.Anonymous }
      : {
          type: UserTokenType.UserName,
          userName: options.user.name,
          password: options.user.password,
        };
  let session: ClientSession;
  try {
    session = await client.createSession(identity);
  } catch (err) {
    await client.disconnect();
    throw err;
  }
  return {
    client,
    session,
    async close() {
      await session.close().catch(() => {});
      await client.disconnect();
    },
  };
}

export function nodeId(sim: OpcuaSimulator, name: string): string {
  return `ns=${sim.namespaceIndex};s=TestStand.${name}`;
}

export function readValue(session: ClientSession, id: string): Promise<DataValue> {
  return session.read({ nodeId: id, attributeId: AttributeIds.Value });
}

/**
 * A read value in the simulator's JS form (model.ts), decoded independently of the
 * simulator: Int64/UInt64 arrive as [high, low] words, ByteString as a Buffer, StatusCode as
 * an object with a name, Float rounded to 32 bits.
 */
export function decode(dataType: string, value: unknown): unknown {
  switch (dataType) {
    case "Int64":
    case "UInt64": {
      const [high, low] = value as [number, number];
      const u = (BigInt(high) << 32n) | BigInt(low);
      return dataType === "Int64" ? BigInt.asIntN(64, u) : u;
    }
    case "ByteString":
      return Uint8Array.from(value as Buffer);
    case "LocalizedText": {
      const lt = value as { text: string; locale: string };
      return { text: lt.text, locale: lt.locale };
    }
    case "StatusCode":
      return (value as { name: string }).name;
    default:
      return value instanceof Float64Array ? [...value] : value;
  }
}
