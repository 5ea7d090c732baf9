/**
 * Issue 13, point 1: an OPC UA server that does not trust plc2mqtt's certificate. The bundled
 * simulator refuses unknown client certificates, either by closing the connection right after
 * the open request (as open62541 does) or with BadSecurityChecksFailed (node-opcua, the
 * specification), while the gateway trusts the server. The connect error must say what most
 * likely happened, with the gateway certificate's file, SHA-1 thumbprint and application URI
 * (read here from the file with node:crypto) and the step on the server's side, on one line;
 * `plc2mqtt pki export` (the built CLI) hands the certificate over, and once it is in the
 * server's trusted folder the same connect succeeds. Exported before the first connect, it is
 * the certificate that connect then uses.
 */
import { X509Certificate } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { OpcuaServerOptions } from "../../simulators/opcua/index.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { Driver } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { runCli } from "../support/cli.ts";
import { type OpcuaFixture, opcuaDevice, startOpcuaFixture } from "./opcua-fixture.ts";

const ctx = () => ({ signal: new AbortController().signal, log: silentLogger() });
const TAGS = [{ name: "batch", node: "nsu=urn:plc2mqtt:teststand;s=TestStand.BatchId" }];

let fixture: OpcuaFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

async function refusingFixture(
  by: "close" | "fault",
): Promise<{ f: OpcuaFixture; config: string }> {
  const options: Partial<OpcuaServerOptions> = {
    trustClientCertificates: "none",
    refuseUntrustedClientsBy: by,
  };
  const f = await startOpcuaFixture(options);
  fixture = f;
  const config = join(f.dir, "gateway.yaml");
  writeFileSync(
    config,
    `version: 1\ngateway: { id: gw, data_dir: ${f.dataDir} }\ndevices:\n  - { id: stand, protocol: opcua, endpoint: "${f.sim.endpointUrl}", tags: [{ name: batch, node: "i=2255" }] }\n`,
  );
  return { f, config };
}

function driver(f: OpcuaFixture, config: string): Driver {
  return createDriver(opcuaDevice(f.sim.endpointUrl, { tags: TAGS }), {
    dataDir: f.dataDir,
    configPath: config,
  });
}

async function connectError(d: Driver): Promise<Error & { code?: string }> {
  const err = await d.connect(ctx()).then(
    () => undefined,
    (e: unknown) => e,
  );
  await d.close();
  expect(err, "the connect must fail").toBeInstanceOf(Error);
  return err as Error & { code?: string };
}

async function readsBatch(d: Driver): Promise<void> {
  try {
    await d.connect(ctx());
    const [sample] = await d.read!(ctx());
    expect(sample).toMatchObject({ tag: "batch", quality: "good", value: "B0001" });
  } finally {
    await d.close();
  }
}

/** What a server's operator sees of the gateway's certificate, read from its file. */
function ownCertificate(f: OpcuaFixture) {
  const file = join(f.pkiDir, "own", "certs", "client_certificate.pem");
  const cert = new X509Certificate(readFileSync(file));
  return {
    file,
    der: cert.raw,
    sha1: cert.fingerprint.replace(/:/g, "").toLowerCase(),
    uri: /URI:([^,\s]+)/.exec(cert.subjectAltName ?? "")?.[1],
  };
}

const simTrusted = (f: OpcuaFixture) => join(f.dir, "sim", "server", "trusted", "certs");

describe("point 1: an OPC UA server that does not trust plc2mqtt's certificate", () => {
  for (const by of ["close", "fault"] as const) {
    it(`point 1: a secure channel refused (${by}) names the certificate, its SHA-1 thumbprint and application URI, and pki export hands it over`, async () => {
      const { f, config } = await refusingFixture(by);
      const err = await connectError(driver(f, config));
      const own = ownCertificate(f);
      expect(own.uri).toMatch(/^urn:/);
      expect(err.code).toBe("OPCUA_CHANNEL_REFUSED");
      expect(err.message).toContain(
        by === "close"
          ? "closed the connection right after the open request"
          : "answered the open request with BadSecurityChecksFailed",
      );
      expect(err.message).toContain("most likely it does not trust plc2mqtt's certificate");
      expect(err.message).toContain(own.file);
      expect(err.message).toContain(`SHA-1 thumbprint ${own.sha1}`);
      expect(err.message).toContain(`application URI ${own.uri}`);
      expect(err.message).toContain("copy it into the server's trusted certificates folder");
      expect(err.message).toContain(`plc2mqtt pki export -c ${config}`);
      expect(err.message).not.toMatch(/\n|may have been rejected/);
      // the server kept the certificate it refused, as a server's operator would find it
      const rejected = readdirSync(join(f.dir, "sim", "server", "rejected"));
      expect(rejected.some((name) => name.includes(own.sha1))).toBe(true);

      const target = join(simTrusted(f), "plc2mqtt.der");
      const exported = await runCli(["pki", "export", "-c", config, "-o", target]);
      expect(exported.code, exported.stderr).toBe(0);
      expect(exported.stderr).toContain(`SHA-1 thumbprint ${own.sha1}`);
      expect(exported.stderr).toContain(`application URI ${own.uri}`);
      expect(readFileSync(target).equals(own.der)).toBe(true);
      await readsBatch(driver(f, config));
    }, 120_000);
  }

  it("point 1: pki export before the first connect makes the certificate that connect then uses", async () => {
    const { f, config } = await refusingFixture("close");
    const exported = await runCli(["pki", "export", "-c", config, "--pem"]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toContain("created now");
    expect(exported.stdout).toMatch(
      /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/,
    );
    writeFileSync(join(simTrusted(f), "plc2mqtt.pem"), exported.stdout);
    await readsBatch(driver(f, config));
    const own = ownCertificate(f);
    expect(new X509Certificate(exported.stdout).raw.equals(own.der)).toBe(true);
    const again = await runCli(["pki", "export", "-c", config, "--pem"]);
    expect(again.stdout).toBe(exported.stdout);
    expect(again.stderr).not.toContain("created now");
  }, 120_000);
});
