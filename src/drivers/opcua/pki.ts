/**
 * The gateway's OPC UA PKI, as files: `<data_dir>/pki` is the rootFolder of every certificate
 * manager node-opcua creates for the gateway (nothing is written under the home folder).
 *
 *   own/certs/client_certificate.pem   the gateway's application certificate, created once
 *   own/private/private_key.pem        and kept (node-opcua creates both on first connect)
 *   trusted/certs/                     server certificates the operator trusts
 *   rejected/                          unknown server certificates, refused, for review
 *   issuers/, user/                    CA certificates; the user certificate store
 *
 * A file name is `<common name>[<sha1 thumbprint>].pem`, as node-opcua names them. Trusting
 * moves (or copies) a certificate into trusted/certs/ and removes it from rejected/; nothing
 * is ever trusted automatically. Pure file operations with node:crypto: no node-opcua here,
 * so `plc2mqtt pki` stays fast.
 */
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GatewayError } from "../../lib/errors.ts";

export interface PkiPaths {
  root: string;
  ownCertificate: string;
  trusted: string;
  rejected: string;
  user: string;
}

export function pkiPaths(pkiDir: string): PkiPaths {
  return {
    root: pkiDir,
    ownCertificate: join(pkiDir, "own", "certs", "client_certificate.pem"),
    trusted: join(pkiDir, "trusted", "certs"),
    rejected: join(pkiDir, "rejected"),
    user: join(pkiDir, "user"),
  };
}

/** The PKI folder of a gateway data_dir. */
export function pkiDirOf(dataDir: string): string {
  return join(dataDir, "pki");
}

export interface CertificateInfo {
  state: "trusted" | "rejected" | "own";
  file: string;
  /** SHA-1 of the DER, lower-case hex: what node-opcua and `pki trust` call the thumbprint. */
  thumbprint: string;
  subject: string;
  validTo: Date;
}

/** DER bytes of a PEM or DER certificate; the first certificate of a PEM chain. */
export function certificateDer(bytes: Buffer): Buffer {
  const text = bytes.toString("latin1");
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(text);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ""), "base64") : bytes;
}

export function thumbprintOf(der: Buffer): string {
  return new X509Certificate(der).fingerprint.replace(/:/g, "").toLowerCase();
}

function commonName(cert: X509Certificate): string {
  return /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1] ?? "certificate";
}

export function toPem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

function fileName(cert: X509Certificate, thumbprint: string): string {
  const label = commonName(cert)
    .replace(/[^A-Za-z0-9._ -]/g, "_")
    .slice(0, 64)
    .trim();
  return `${label || "certificate"}[${thumbprint}].pem`;
}

function describe(file: string, state: CertificateInfo["state"]): CertificateInfo | undefined {
  try {
    const der = certificateDer(readFileSync(file));
    const cert = new X509Certificate(der);
    return {
      state,
      file,
      thumbprint: thumbprintOf(der),
      subject: commonName(cert),
      validTo: new Date(cert.validTo),
    };
  } catch {
    return undefined; // not a certificate (a .mutex file, a CRL): not listed
  }
}

function inFolder(folder: string, state: CertificateInfo["state"]): CertificateInfo[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { withFileTypes: true })
    .filter((e) => e.isFile() && /\.(pem|der|crt)$/i.test(e.name))
    .map((e) => describe(join(folder, e.name), state))
    .filter((c): c is CertificateInfo => c !== undefined);
}

/** The own, trusted and rejected certificates of a PKI folder. */
export function listCertificates(pkiDir: string): CertificateInfo[] {
  const paths = pkiPaths(pkiDir);
  const own = existsSync(paths.ownCertificate) ? describe(paths.ownCertificate, "own") : undefined;
  return [
    ...(own ? [own] : []),
    ...inFolder(paths.trusted, "trusted"),
    ...inFolder(paths.rejected, "rejected"),
  ];
}

function findByThumbprint(pkiDir: string, prefix: string): CertificateInfo[] {
  const wanted = prefix.replace(/:/g, "").toLowerCase();
  if (!/^[0-9a-f]{6,40}$/.test(wanted)) return [];
  return listCertificates(pkiDir).filter(
    (c) => c.state !== "own" && c.thumbprint.startsWith(wanted),
  );
}

/**
 * Trusts a certificate given as a file (PEM or DER) or as the thumbprint (or a unique prefix
 * of at least 6 hex digits) of a certificate in rejected/. Returns what is now trusted.
 */
export function trustCertificate(pkiDir: string, fileOrThumbprint: string): CertificateInfo {
  const paths = pkiPaths(pkiDir);
  let der: Buffer;
  if (existsSync(fileOrThumbprint)) {
    try {
      der = certificateDer(readFileSync(fileOrThumbprint));
      new X509Certificate(der);
    } catch (err) {
      throw new GatewayError("PKI", `${fileOrThumbprint} is not a PEM or DER certificate`, {
        cause: err,
      });
    }
  } else {
    const matches = findByThumbprint(pkiDir, fileOrThumbprint).filter(
      (c) => c.state === "rejected",
    );
    if (matches.length !== 1) {
      const rejected = inFolder(paths.rejected, "rejected").map((c) => c.thumbprint);
      throw new GatewayError(
        "PKI",
        matches.length === 0
          ? `no file and no rejected certificate ${fileOrThumbprint} in ${paths.rejected} (rejected: ${rejected.join(", ") || "none"})`
          : `thumbprint ${fileOrThumbprint} is ambiguous: give more digits`,
      );
    }
    der = certificateDer(readFileSync(matches[0]!.file));
  }
  const cert = new X509Certificate(der);
  const thumbprint = thumbprintOf(der);
  mkdirSync(paths.trusted, { recursive: true });
  const target = join(paths.trusted, fileName(cert, thumbprint));
  writeFileSync(target, toPem(der));
  for (const c of inFolder(paths.rejected, "rejected")) {
    if (c.thumbprint === thumbprint) rmSync(c.file, { force: true });
  }
  return describe(target, "trusted")!;
}

/** Removes a trusted or rejected certificate by thumbprint (or unique prefix). */
export function removeCertificate(pkiDir: string, thumbprint: string): CertificateInfo[] {
  const matches = findByThumbprint(pkiDir, thumbprint);
  if (matches.length === 0) {
    throw new GatewayError("PKI", `no trusted or rejected certificate ${thumbprint} in ${pkiDir}`);
  }
  const distinct = new Set(matches.map((c) => c.thumbprint));
  if (distinct.size > 1) {
    throw new GatewayError("PKI", `thumbprint ${thumbprint} is ambiguous: give more digits`);
  }
  for (const c of matches) rmSync(c.file, { force: true });
  return matches;
}

export function isTrusted(pkiDir: string, thumbprint: string): boolean {
  return inFolder(pkiPaths(pkiDir).trusted, "trusted").some((c) => c.thumbprint === thumbprint);
}

/** Days until a certificate expires (negative when it already has). */
export function daysLeft(der: Buffer, now = Date.now()): number {
  return (new Date(new X509Certificate(der).validTo).getTime() - now) / 86_400_000;
}

export function subjectOf(der: Buffer): string {
  return commonName(new X509Certificate(der));
}

/** The application URI of an OPC UA application certificate (its subjectAltName URI). */
export function applicationUriOf(der: Buffer): string | undefined {
  const names = new X509Certificate(der).subjectAltName ?? "";
  return /(?:^|,\s*)URI:([^,]+)/.exec(names)?.[1]?.trim();
}

/** The gateway's own certificate, as a server's operator needs to recognise and trust it. */
export interface OwnCertificate {
  file: string;
  der: Buffer;
  /** SHA-1 of the DER, lower-case hex: what UA servers list as the thumbprint. */
  thumbprint: string;
  subject: string;
  applicationUri: string | undefined;
  validTo: Date;
}

/** The own certificate of a PKI folder; undefined before the first connect has created it. */
export function ownCertificate(pkiDir: string): OwnCertificate | undefined {
  const file = pkiPaths(pkiDir).ownCertificate;
  let der: Buffer;
  try {
    der = certificateDer(readFileSync(file));
    new X509Certificate(der);
  } catch {
    return undefined;
  }
  const cert = new X509Certificate(der);
  return {
    file,
    der,
    thumbprint: thumbprintOf(der),
    subject: commonName(cert),
    applicationUri: applicationUriOf(der),
    validTo: new Date(cert.validTo),
  };
}

/** The command an operator runs to trust a rejected server certificate. */
export function trustCommand(pkiDir: string, thumbprint: string, configPath?: string): string {
  return configPath === undefined
    ? `plc2mqtt pki trust --pki-dir ${pkiDir} ${thumbprint}`
    : `plc2mqtt pki trust -c ${configPath} ${thumbprint}`;
}
