/**
 * The gateway's own OPC UA certificate, made before any connect when an operator asks for it
 * (`plc2mqtt pki export`: the server's side can trust the gateway before it first connects).
 * It is made exactly as node-opcua makes it at the first connect (same client, application
 * name and certificate manager, so the same subject and application URI), and kept: a later
 * connect uses it as it is. An existing certificate is never replaced.
 */
import { APPLICATION_NAME, certificateManager } from "./connection.ts";
import { loadOpcua } from "./load.ts";
import { type OwnCertificate, ownCertificate } from "./pki.ts";

export async function ensureOwnCertificate(pkiDir: string): Promise<OwnCertificate> {
  const existing = ownCertificate(pkiDir);
  if (existing !== undefined) return existing;
  const opcua = await loadOpcua();
  const manager = certificateManager(opcua, pkiDir);
  try {
    await manager.initialize();
    const client = opcua.OPCUAClient.create({
      applicationName: APPLICATION_NAME,
      clientCertificateManager: manager,
    });
    await client.createDefaultCertificate();
  } finally {
    await manager.dispose();
  }
  const made = ownCertificate(pkiDir);
  if (made === undefined) throw new Error(`node-opcua made no certificate in ${pkiDir}`);
  return made;
}
