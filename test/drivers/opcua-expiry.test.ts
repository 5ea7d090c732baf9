/**
 * Certificate expiry warnings, with certificates made by openssl that expire in a few days: the
 * simulator's server certificate (10 days, trusted by the gateway) and the gateway's own
 * application certificate (5 days, put in <data_dir>/pki/own before the first connect, with an
 * application URI of the operator's choosing). The connection works, and each connect logs one
 * warning per certificate naming it (subject, thumbprint) and the days left.
 */
import { X509Certificate } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpcuaSimulator, startOpcuaSimulator } from "../../simulators/opcua/index.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { opcuaDevice } from "./opcua-fixture.ts";
import { makeCertificate } from "./opcua-openssl.ts";

const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-opcua-expiry-"));
const simPki = join(dir, "sim");
const dataDir = join(dir, "data");
const pkiDir = join(dataDir, "pki");
const serverCert = join(simPki, "server", "own", "certs", "certificate.pem");
const ownCert = join(pkiDir, "own", "certs", "client_certificate.pem");

const lines: Record<string, unknown>[] = [];
const log = createLogger({
  destination: new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  }),
});
const ctx = () => ({ signal: new AbortController().signal, log });

let sim: OpcuaSimulator;

function thumbprint(file: string): string {
  return new X509Certificate(readFileSync(file)).fingerprint.replace(/:/g, "").toLowerCase();
}

beforeAll(async () => {
  makeCertificate({
    dir,
    cert: serverCert,
    key: join(simPki, "server", "own", "private", "private_key.pem"),
    commonName: "short-lived simulator",
    days: 10,
    usage: "serverAuth, clientAuth",
    altNames: ["URI:urn:plc2mqtt:opcua-simulator", "DNS:localhost", "IP:127.0.0.1"],
  });
  makeCertificate({
    dir,
    cert: ownCert,
    key: join(pkiDir, "own", "private", "private_key.pem"),
    commonName: "short-lived gateway",
    days: 5,
    usage: "serverAuth, clientAuth",
    altNames: ["URI:urn:plc2mqtt:test:short-lived-gateway", "DNS:localhost"],
  });
  sim = await startOpcuaSimulator({ pkiDir: simPki, security: ["SignAndEncrypt"] });
  mkdirSync(join(pkiDir, "trusted", "certs"), { recursive: true });
  copyFileSync(sim.serverCertificateFile, join(pkiDir, "trusted", "certs", "simulator.pem"));
});
afterAll(async () => {
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

const expiryWarnings = () =>
  lines.filter((l) => l.level === 40 && String(l.msg).startsWith("certificate expires"));

describe("OPC UA certificate expiry", () => {
  it("connects with short-lived certificates and warns about each once per connect", async () => {
    expect(sim.serverCertificateFile).toBe(serverCert);
    const device = opcuaDevice(sim.endpointUrl, {
      tags: [{ name: "batch", node: "nsu=urn:plc2mqtt:teststand;s=TestStand.BatchId" }],
    });
    const d = createDriver(device, { dataDir });
    for (let round = 1; round <= 2; round++) {
      try {
        await d.connect(ctx());
        const [sample] = await d.read!(ctx());
        expect(sample).toMatchObject({ tag: "batch", quality: "good", value: "B0001" });
      } finally {
        await d.close();
      }
      const warnings = expiryWarnings();
      expect(warnings).toHaveLength(2 * round);
      expect(warnings.filter((w) => w.certificate === "server")).toHaveLength(round);
      expect(warnings.filter((w) => w.certificate === "own")).toHaveLength(round);
    }
    const [server, own] = ["server", "own"].map((c) =>
      expiryWarnings().find((w) => w.certificate === c),
    );
    expect(server).toMatchObject({
      device: "stand-1",
      subject: "short-lived simulator",
      thumbprint: thumbprint(serverCert),
      days: expect.any(Number),
    });
    expect(server?.days).toBeGreaterThanOrEqual(9);
    expect(server?.days).toBeLessThanOrEqual(10);
    expect(own).toMatchObject({
      device: "stand-1",
      subject: "short-lived gateway",
      thumbprint: thumbprint(ownCert),
      file: ownCert,
    });
    expect(own?.days).toBeGreaterThanOrEqual(4);
    expect(own?.days).toBeLessThanOrEqual(5);
    // The gateway kept the certificate it was given: node-opcua did not replace it.
    expect(thumbprint(ownCert)).toBe(own?.thumbprint);
  });
});
