/**
 * How the simulator refuses a client certificate it does not trust (trustClientCertificates
 * "none"), so the gateway's error for a server that does not trust it can be tested against
 * both behaviours seen in the field (issue 13, point 1):
 *
 * - "fault": node-opcua's own answer, a ServiceFault BadSecurityChecksFailed to the
 *   OpenSecureChannel request (what the specification asks of a server).
 * - "close": the connection is closed right after the open request, without an answer, as
 *   open62541 does (its log says BadCertificateUntrusted; the client sees only the close).
 *
 * Either way the refused certificate lands in server/rejected/ (node-opcua puts it there), and
 * one copied into server/trusted/certs/ (PEM or DER) is trusted from the next connect on, as
 * an operator expects of a server's trusted folder: when a certificate is refused, the trusted
 * folder is looked at again (file watchers are off), and a certificate found there wins over
 * its copy in rejected/, which is removed (node-opcua would let the rejected copy win).
 *
 * "close" reaches into node-opcua's endpoint (its `_channels`, the channels still in their
 * handshake): node-opcua offers no public way to drop a connection instead of answering.
 */
import { createHash, X509Certificate } from "node:crypto";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { OPCUACertificateManager, OPCUAServer } from "node-opcua";
import { readCertificateFile } from "./pki.ts";

export type ClientRefusal = "fault" | "close";

interface HandshakingChannel {
  isOpened: boolean;
  abruptlyInterrupt(): void;
}

const sha1 = (der: Buffer) => createHash("sha1").update(der).digest("hex");

/** The certificate files of a folder, by the SHA-1 of their (first) certificate. */
function certificatesIn(folder: string): Map<string, string> {
  const found = new Map<string, string>();
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return found;
  }
  for (const name of names) {
    const file = join(folder, name);
    try {
      const der = readCertificateFile(file);
      new X509Certificate(der);
      found.set(sha1(der), file);
    } catch {
      // not a certificate (a CRL, a lock file)
    }
  }
  return found;
}

/** Trusted on disk since the manager read its folders: drop the rejected copy, read again. */
async function trustedSince(manager: OPCUACertificateManager, leaf: Buffer): Promise<boolean> {
  const thumbprint = sha1(leaf);
  if (!certificatesIn(manager.trustedFolder).has(thumbprint)) return false;
  const rejected = certificatesIn(manager.rejectedFolder).get(thumbprint);
  if (rejected !== undefined) rmSync(rejected, { force: true });
  await manager.reloadCertificates();
  return true;
}

/** The client's own certificate, the first of the chain it sent. */
function leafOf(certificate: unknown): Buffer | undefined {
  try {
    return new X509Certificate(certificate as Buffer).raw;
  } catch {
    return undefined;
  }
}

export function refuseUntrustedClients(
  server: OPCUAServer,
  manager: OPCUACertificateManager,
  refusal: ClientRefusal,
): void {
  for (const endpoint of server.endpoints) {
    endpoint.onAdjustCertificateStatus = async (status, certificate) => {
      let verdict = status;
      const leaf = leafOf(certificate);
      if (verdict.isNotGood() && leaf !== undefined && (await trustedSince(manager, leaf))) {
        verdict = await manager.checkCertificate(certificate);
      }
      if (verdict.isNotGood() && refusal === "close") {
        const channels = (endpoint as unknown as { _channels: Record<string, HandshakingChannel> })
          ._channels;
        for (const channel of Object.values(channels)) {
          if (!channel.isOpened) channel.abruptlyInterrupt();
        }
      }
      return verdict;
    };
  }
}
