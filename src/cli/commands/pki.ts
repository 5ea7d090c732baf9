/**
 * `plc2mqtt pki trust|list|remove`: the operator's hands on the OPC UA PKI of a gateway
 * (`<data_dir>/pki`, data_dir from the config given with -c, or the folder given with
 * --pki-dir). Nothing is ever trusted automatically: an unknown server certificate lands in
 * rejected/ and the connect error names the `pki trust` command for it. File operations only;
 * node-opcua is not loaded. A running gateway sees the change at its next connect.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import {
  type CertificateInfo,
  listCertificates,
  pkiDirOf,
  removeCertificate,
  trustCertificate,
} from "../../drivers/opcua/pki.ts";
import { GatewayError } from "../../lib/errors.ts";
import { formatTable } from "../format-table.ts";

interface PkiFlags {
  config?: string;
  pkiDir?: string;
  json?: boolean;
}

async function pkiDirFrom(flags: PkiFlags): Promise<string> {
  if (flags.pkiDir !== undefined) return resolve(flags.pkiDir);
  if (flags.config === undefined) {
    throw new GatewayError(
      "USAGE",
      "give the gateway config with -c (or the folder with --pki-dir)",
    );
  }
  const { config } = await loadConfig(flags.config, process.env);
  return pkiDirOf(resolve(config.gateway.data_dir));
}

function row(c: CertificateInfo): string[] {
  return [c.state, c.thumbprint, c.subject, c.validTo.toISOString().slice(0, 10), c.file];
}

function withTarget(command: Command): Command {
  return command
    .option("-c, --config <file>", "gateway config (YAML): its data_dir holds the PKI")
    .option("--pki-dir <dir>", "the PKI folder itself (<data_dir>/pki)");
}

export function registerPki(program: Command): void {
  const pki = program
    .command("pki")
    .description("manage the OPC UA certificates: trust a server, list, remove");
  withTarget(pki.command("trust"))
    .description("trust a server certificate: a PEM/DER file, or the thumbprint of a rejected one")
    .argument("<file-or-thumbprint>", "certificate file, or thumbprint (prefix) from `pki list`")
    .action(async (what: string, flags: PkiFlags) => {
      const cert = trustCertificate(await pkiDirFrom(flags), what);
      process.stdout.write(`trusted ${cert.subject} [${cert.thumbprint}]: ${cert.file}\n`);
    });
  withTarget(pki.command("list"))
    .description("list the own, trusted and rejected certificates")
    .option("--json", "one JSON object per certificate")
    .action(async (flags: PkiFlags) => {
      const dir = await pkiDirFrom(flags);
      const certs = listCertificates(dir);
      if (flags.json) {
        process.stdout.write(certs.map((c) => `${JSON.stringify(c)}\n`).join(""));
        return;
      }
      process.stdout.write(
        `${formatTable(["state", "thumbprint", "subject", "valid to", "file"], certs.map(row))}\n`,
      );
    });
  withTarget(pki.command("remove"))
    .description("remove a trusted or rejected certificate")
    .argument("<thumbprint>", "thumbprint (prefix) from `pki list`")
    .action(async (thumbprint: string, flags: PkiFlags) => {
      for (const c of removeCertificate(await pkiDirFrom(flags), thumbprint)) {
        process.stdout.write(`removed ${c.state} ${c.subject} [${c.thumbprint}]: ${c.file}\n`);
      }
    });
}
