/**
 * Self-signed certificates for the OPC UA tests, made by the real openssl (as an operator or a
 * plant CA would make them): RSA 2048, SHA-256, X.509 v3 with what OPC UA Part 6 asks of an
 * application or user certificate — basicConstraints CA:FALSE, keyUsage digitalSignature,
 * nonRepudiation, keyEncipherment, dataEncipherment, extendedKeyUsage, a subjectAltName with
 * the application URI (and DNS/IP names for a server), and subject/authority key identifiers
 * that are equal (node-opcua's PKI recognises a self-signed certificate by them).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export interface CertificateRequest {
  /** Folder for the openssl config; certificate and key go to `cert` and `key`. */
  dir: string;
  cert: string;
  key: string;
  commonName: string;
  days: number;
  /** subjectAltName entries: "URI:urn:...", "DNS:localhost", "IP:127.0.0.1". */
  altNames: string[];
  /** extendedKeyUsage, default clientAuth. */
  usage?: string;
  /** Sign with this existing private key (PEM) instead of a new one. */
  existingKey?: boolean;
}

export function makeCertificate(r: CertificateRequest): void {
  const config = join(r.dir, `${r.commonName.replace(/\W/g, "_")}.cnf`);
  writeFileSync(
    config,
    [
      "[req]",
      "distinguished_name = dn",
      "x509_extensions = v3",
      "prompt = no",
      "[dn]",
      `CN = ${r.commonName}`,
      "O = plc2mqtt tests",
      "[v3]",
      "basicConstraints = critical, CA:FALSE",
      "keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment",
      `extendedKeyUsage = ${r.usage ?? "clientAuth"}`,
      `subjectAltName = ${r.altNames.join(", ")}`,
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid:always",
      "",
    ].join("\n"),
  );
  mkdirSync(dirname(r.cert), { recursive: true });
  mkdirSync(dirname(r.key), { recursive: true });
  const key = r.existingKey ? ["-key", r.key] : ["-newkey", "rsa:2048", "-nodes", "-keyout", r.key];
  execFileSync(
    "openssl",
    ["req", "-x509", ...key, "-sha256", "-days", String(r.days), "-config", config, "-out", r.cert],
    { stdio: "ignore" },
  );
}
