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
 * one copied into server/trusted/certs/ is trusted from the next connect on: the trust list is
 * read again when a certificate is refused (file watchers are off), as an operator expects of
 * a server's trusted folder.
 *
 * "close" reaches into node-opcua's endpoint (its `_channels`, the channels still in their
 * handshake): node-opcua offers no public way to drop a connection instead of answering.
 */
import type { OPCUACertificateManager, OPCUAServer } from "node-opcua";

export type ClientRefusal = "fault" | "close";

interface HandshakingChannel {
  isOpened: boolean;
  abruptlyInterrupt(): void;
}

export function refuseUntrustedClients(
  server: OPCUAServer,
  manager: OPCUACertificateManager,
  refusal: ClientRefusal,
): void {
  for (const endpoint of server.endpoints) {
    endpoint.onAdjustCertificateStatus = async (status, certificate) => {
      let verdict = status;
      if (verdict.isNotGood()) {
        await manager.reloadCertificates();
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
