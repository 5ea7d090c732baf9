/**
 * `plc2mqtt pki trust|list|remove|export`: the operator's hands on the OPC UA PKI of a gateway
 * (`<data_dir>/pki`, data_dir from the config given with -c, or the folder given with
 * --pki-dir). Nothing is ever trusted automatically: an unknown server certificate lands in
 * rejected/ and the connect error names the `pki trust` command for it. File operations only;
 * node-opcua is loaded only by `export` before the gateway's first connect, to make the
 * gateway's certificate as that connect would. A running gateway sees a change at its next
 * connect. `export` hands the gateway's certificate to a server's operator (the other trust
 * direction, issue 13): PEM or DER, to stdout or a file, with what identifies it on stderr.
 */
import { writeFileSync } from "node:fs";
import { extname, resolve } from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import {
  type CertificateInfo,
  listCertificates,
  ownCertificate,
  pkiDirOf,
  removeCertificate,
  toPem,
  trustCertificate,
} from "../../drivers/opcua/pki.ts";
import { GatewayError } from "../../lib/errors.ts";
import { formatTable } from "../format-table.ts";

interface PkiFlags {
  config?: string;
  pkiDir?: string;
  json?: boolean;
  der?: boolean;
  pem?: boolean;
  output?: string;
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

/** --der, --pem, or from the file name (.der, .cer: DER); PEM otherwise. */
function exportFormat(flags: PkiFlags): "der" | "pem" {
  if (flags.der && flags.pem) throw new GatewayError("USAGE", "give --der or --pem, not both");
  if (flags.der) return "der";
  if (flags.pem) return "pem";
  const ext = flags.output === undefined ? "" : extname(flags.output).toLowerCase();
  return ext === ".der" || ext === ".cer" ? "der" : "pem";
}

async function exportOwn(flags: PkiFlags): Promise<void> {
  const format = exportFormat(flags);
  if (format === "der" && flags.output === undefined && process.stdout.isTTY) {
    throw new GatewayError("USAGE", "DER is binary: write it to a file with -o, or use --pem");
  }
  const dir = await pkiDirFrom(flags);
  const existed = ownCertificate(dir) !== undefined;
  // loaded here only: the other pki commands stay file operations
  const { ensureOwnCertificate } = await import("../../drivers/opcua/own-certificate.ts");
  const own = await ensureOwnCertificate(dir);
  const bytes = format === "der" ? own.der : Buffer.from(toPem(own.der));
  if (flags.output === undefined) process.stdout.write(bytes);
  else writeFileSync(flags.output, bytes);
  const lines = [
    `plc2mqtt's OPC UA certificate ${own.file}${existed ? "" : " (created now, as the first connect would: the gateway's user must be able to read it)"}`,
    `  subject ${own.subject}, SHA-1 thumbprint ${own.thumbprint}, application URI ${own.applicationUri ?? "none"}, valid to ${own.validTo.toISOString().slice(0, 10)}`,
    ...(flags.output === undefined
      ? []
      : [`  written as ${format.toUpperCase()} to ${flags.output}`]),
    "The server must trust it: copy it into the server's trusted certificates folder, or accept it in the server's UI.",
  ];
  process.stderr.write(`${lines.join("\n")}\n`);
}

export function registerPki(program: Command): void {
  const pki = program
    .command("pki")
    .description(
      "manage the OPC UA certificates: trust a server, list, remove, export the gateway's own",
    );
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
  withTarget(pki.command("export"))
    .description("write the gateway's own certificate, for the server's trusted folder or UI")
    .option("--der", "DER (binary; the default for -o *.der or *.cer)")
    .option("--pem", "PEM (text; the default otherwise)")
    .option("-o, --output <file>", "write it here instead of stdout")
    .action((flags: PkiFlags) => exportOwn(flags));
  withTarget(pki.command("remove"))
    .description("remove a trusted or rejected certificate")
    .argument("<thumbprint>", "thumbprint (prefix) from `pki list`")
    .action(async (thumbprint: string, flags: PkiFlags) => {
      for (const c of removeCertificate(await pkiDirFrom(flags), thumbprint)) {
        process.stdout.write(`removed ${c.state} ${c.subject} [${c.thumbprint}]: ${c.file}\n`);
      }
    });
}
