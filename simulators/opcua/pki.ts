/**
 * The simulator's certificate stores, all under `pkiDir` (node-opcua would otherwise write
 * under the home folder): `server/` is the server's PKI (own/certs/certificate.pem and
 * own/private/private_key.pem, trusted/ and rejected/ client certificates), `user/` the store
 * for X509 user tokens. The server certificate is self-signed, created on the first start and
 * reused afterwards (a certificate and key put there beforehand are used as they are); its
 * subjectAltName covers localhost, 127.0.0.1, the machine's host name and the advertised host,
 * with the application URI APPLICATION_URI. Stores are built fresh for every server start
 * (node-opcua disposes them on shutdown) with file watchers off. User certificates named in
 * trustedUserCertificates are trusted in `user/` at each start, and then only those (and any
 * trusted there before) are accepted.
 */
import { existsSync, readFileSync } from "node:fs";
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

/** DER of a PEM (first certificate) or DER certificate file; throws naming the file. */
export function readCertificateFile(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new Error(`OPC UA simulator: cannot read the certificate ${file}`, { cause: err });
  }
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(
    bytes.toString("latin1"),
  );
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ""), "base64") : bytes;
}

export async function openStores(
  opcua: Opcua,
  pkiDir: string,
  advertisedHost: string,
  trustClients: boolean,
  userCertificates?: readonly Buffer[],
): Promise<Stores> {
  const make = (folder: string, acceptUnknown: boolean) =>
    new opcua.OPCUACertificateManager({
      rootFolder: join(pkiDir, folder),
      automaticallyAcceptUnknownCertificate: acceptUnknown,
      disableFileWatchers: true,
    });
  const server = make("server", trustClients);
  const user = make("user", trustClients && userCertificates === undefined);
  const certificateFile = serverCertificateFile(pkiDir);
  try {
    if (userCertificates !== undefined) {
      await user.initialize();
      for (const der of userCertificates) await user.trustCertificate(der);
    }
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
    throw new Error(`OPC UA simulator: cannot prepare the certificate stores under ${pkiDir}`, {
      cause: err,
    });
  }
  return { server, user, certificateFile };
}
