/**
 * The simulator's certificate stores, all under `pkiDir` (node-opcua would otherwise write
 * under the home folder): `server/` is the server's PKI (own/certs/certificate.pem and
 * own/private/private_key.pem, trusted/ and rejected/ client certificates), `user/` the store
 * for X509 user tokens. The server certificate is self-signed, created on the first start and
 * reused afterwards; its subjectAltName covers localhost, 127.0.0.1, the machine's host name
 * and the advertised host, with the application URI APPLICATION_URI. Stores are built fresh
 * for every server start (node-opcua disposes them on shutdown) with file watchers off.
 */
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { OPCUACertificateManager } from "node-opcua";

type Opcua = typeof import("node-opcua");

export const APPLICATION_URI = "urn:plc2mqtt:opcua-simulator";
export const APPLICATION_NAME = "plc2mqtt OPC UA simulator";

export interface Stores {
  server: OPCUACertificateManager;
  user: OPCUACertificateManager;
  certificateFile: string;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export function serverCertificateFile(pkiDir: string): string {
  return join(pkiDir, "server", "own", "certs", "certificate.pem");
}

export async function openStores(
  opcua: Opcua,
  pkiDir: string,
  advertisedHost: string,
  trustClients: boolean,
): Promise<Stores> {
  const make = (folder: string) =>
    new opcua.OPCUACertificateManager({
      rootFolder: join(pkiDir, folder),
      automaticallyAcceptUnknownCertificate: trustClients,
      disableFileWatchers: true,
    });
  const server = make("server");
  const user = make("user");
  const certificateFile = serverCertificateFile(pkiDir);
  try {
    await server.initialize();
    if (!existsSync(certificateFile)) {
      const host = hostname();
      const names = [advertisedHost, "localhost", host].filter(
        (n) => !IPV4.test(n) && !n.includes(":"),
      );
      const ips = [advertisedHost, "127.0.0.1"].filter((n) => IPV4.test(n));
      await server.createSelfSignedCertificate({
        applicationUri: APPLICATION_URI,
        dns: [...new Set(names)],
        ip: [...new Set(ips)],
        outputFile: certificateFile,
        subject: `/CN=${APPLICATION_NAME}@${host}/O=plc2mqtt`,
        startDate: new Date(Date.now() - 24 * 3600_000),
        validity: 365 * 10,
      });
    }
  } catch (err) {
    await Promise.allSettled([server.dispose(), user.dispose()]);
    throw new Error(`OPC UA simulator: cannot prepare the server certificate under ${pkiDir}`, {
      cause: err,
    });
  }
  return { server, user, certificateFile };
}
