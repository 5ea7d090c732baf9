/**
 * `plc2mqtt pki` (the built CLI) on a PKI folder: trust a certificate file, list it with its
 * thumbprint, trust a rejected one by thumbprint prefix (it leaves rejected/), remove it, and
 * clear errors for unknown thumbprints and non-certificates. Certificates come from openssl.
 */
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-pki-cli-"));
const pkiDir = join(dir, "data", "pki");
const config = join(dir, "gateway.yaml");
writeFileSync(
  config,
  `version: 1\ngateway: { id: gw, data_dir: ${join(dir, "data")} }\ndevices:\n  - { id: s, protocol: opcua, endpoint: "opc.tcp://127.0.0.1:4840", tags: [{ name: t, node: "i=2258" }] }\n`,
);

function makeCert(name: string): string {
  const file = join(dir, `${name}.pem`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "30",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      join(dir, `${name}.key`),
      "-out",
      file,
    ],
    { stdio: "ignore" },
  );
  return file;
}

interface Listed {
  state: string;
  thumbprint: string;
  subject: string;
  file: string;
}

async function list(): Promise<Listed[]> {
  const { stdout, code } = await runCli(["pki", "list", "-c", config, "--json"]);
  expect(code).toBe(0);
  return stdout.trim() === ""
    ? []
    : stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Listed);
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("plc2mqtt pki", () => {
  it("trusts a file, trusts a rejected certificate by thumbprint, lists and removes", async () => {
    const plant = makeCert("plant-server");
    const trusted = await runCli(["pki", "trust", "-c", config, plant]);
    expect(trusted.code).toBe(0);
    expect(trusted.stdout).toMatch(/^trusted plant-server \[[0-9a-f]{40}\]/);
    const [first] = await list();
    expect(first).toMatchObject({ state: "trusted", subject: "plant-server" });

    // a certificate node-opcua refused lands in rejected/; trust it by a thumbprint prefix
    const other = makeCert("other-server");
    mkdirSync(join(pkiDir, "rejected"), { recursive: true });
    copyFileSync(other, join(pkiDir, "rejected", "other-server[x].pem"));
    const rejected = (await list()).find((c) => c.state === "rejected")!;
    expect(rejected.subject).toBe("other-server");
    const table = await runCli(["pki", "list", "--pki-dir", pkiDir]);
    expect(table.stdout).toMatch(/^state\s+thumbprint\s+subject\s+valid to\s+file/);
    expect(table.stdout).toContain(rejected.thumbprint);
    const byPrint = await runCli([
      "pki",
      "trust",
      "--pki-dir",
      pkiDir,
      rejected.thumbprint.slice(0, 8),
    ]);
    expect(byPrint.code).toBe(0);
    expect(readdirSync(join(pkiDir, "rejected"))).toHaveLength(0);
    expect((await list()).filter((c) => c.state === "trusted")).toHaveLength(2);

    const removed = await runCli(["pki", "remove", "-c", config, first!.thumbprint]);
    expect(removed.code).toBe(0);
    expect(existsSync(first!.file)).toBe(false);
    expect((await list()).map((c) => c.subject)).toEqual(["other-server"]);
  }, 120_000); // a dozen CLI runs: minutes on a shared, loaded machine, never a speed check

  it("refuses unknown thumbprints, non-certificates and a missing target with clear errors", async () => {
    const unknown = await runCli(["pki", "trust", "-c", config, "abcdef123456"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/PKI: no file and no rejected certificate abcdef123456/);
    const junk = join(dir, "junk.pem");
    writeFileSync(junk, "not a certificate");
    const bad = await runCli(["pki", "trust", "-c", config, junk]);
    expect(bad.stderr).toMatch(/PKI: .*junk\.pem is not a PEM or DER certificate/);
    const remove = await runCli(["pki", "remove", "-c", config, "00000000"]);
    expect(remove.stderr).toMatch(/PKI: no trusted or rejected certificate 00000000/);
    const usage = await runCli(["pki", "list"]);
    expect(usage.code).toBe(2);
  });
});
