/**
 * Choosing the endpoint to connect to, from what GetEndpoints offered. Pure (no node-opcua).
 *
 * - The mode must match exactly. `auto` picks the strongest of the modern policies offered,
 *   in the order Aes256_Sha256_RsaPss > Aes128_Sha256_RsaOaep > Basic256Sha256; deprecated
 *   policies (Basic128Rsa15, Basic256) are used only when named.
 * - Nothing matching: an OPCUA_SECURITY error that lists what the server offers (also as
 *   details.offered), and `alternative` names the best of it to suggest (issue 13: `browse`
 *   with the default SignAndEncrypt against a None-only server suggests --security None).
 */
import { GatewayError } from "../../lib/errors.ts";

export type SecurityMode = "None" | "Sign" | "SignAndEncrypt";

export interface OfferedEndpoint {
  mode: SecurityMode | "Invalid";
  /** Short policy name: the part of the URI after '#' ("Basic256Sha256", "None"). */
  policy: string;
  /** DER of the server certificate the endpoint carries, when any. */
  serverCertificate?: Buffer;
}

export const AUTO_ORDER = ["Aes256_Sha256_RsaPss", "Aes128_Sha256_RsaOaep", "Basic256Sha256"];

export function policyName(uri: string | null | undefined): string {
  if (!uri) return "None";
  return uri.includes("#") ? uri.slice(uri.lastIndexOf("#") + 1) : uri;
}

export function describeOffer(offered: readonly OfferedEndpoint[]): string {
  const names = offered.map((e) => (e.mode === "None" ? "None" : `${e.mode}/${e.policy}`));
  return [...new Set(names)].join(", ") || "nothing";
}

export function chooseEndpoint(
  offered: readonly OfferedEndpoint[],
  wanted: { mode: SecurityMode; policy: string },
  endpointUrl: string,
): OfferedEndpoint {
  const sameMode = offered.filter((e) => e.mode === wanted.mode);
  let chosen: OfferedEndpoint | undefined;
  if (wanted.mode === "None") chosen = sameMode[0];
  else if (wanted.policy === "auto") {
    for (const policy of AUTO_ORDER) {
      chosen = sameMode.find((e) => e.policy === policy);
      if (chosen) break;
    }
  } else chosen = sameMode.find((e) => e.policy === wanted.policy);
  if (chosen) return chosen;
  const asked =
    wanted.mode === "None"
      ? "security mode None"
      : `${wanted.mode} with ${wanted.policy === "auto" ? `one of ${AUTO_ORDER.join(", ")}` : wanted.policy}`;
  throw new GatewayError(
    "OPCUA_SECURITY",
    `${endpointUrl} offers no endpoint with ${asked}; it offers: ${describeOffer(offered)}`,
    { details: { offered: offered.map((e) => ({ mode: e.mode, policy: e.policy })) } },
  );
}

/**
 * What to ask for instead, when nothing offered matched `wanted`: the same mode with another
 * policy (the strongest), else Sign, else None; undefined when nothing usable is offered.
 */
export function alternative(
  offered: readonly Pick<OfferedEndpoint, "mode" | "policy">[],
  wanted: { mode: SecurityMode },
): { mode: SecurityMode; policy: string } | undefined {
  const strongest = (mode: SecurityMode) => {
    const inMode = offered.filter((e) => e.mode === mode);
    const best = AUTO_ORDER.find((p) => inMode.some((e) => e.policy === p));
    return best ?? inMode[0]?.policy;
  };
  const order: SecurityMode[] =
    wanted.mode === "None" ? ["None"] : [wanted.mode, "SignAndEncrypt", "Sign", "None"];
  for (const mode of order) {
    const policy = strongest(mode);
    if (policy !== undefined) return { mode, policy: mode === "None" ? "None" : policy };
  }
  return undefined;
}
