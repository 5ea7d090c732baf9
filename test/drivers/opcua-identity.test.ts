/**
 * X.509 user identities against the simulator: a user certificate made by openssl and trusted
 * by the server (its user certificate store) opens a SignAndEncrypt session and reads a tag;
 * an untrusted one is refused with OPCUA_AUTH naming the certificate file, subject and
 * thumbprint (never the key) and put in the server's user/rejected/; a key that does not match
 * the certificate is refused naming the key file; a missing key file is refused before any
 * network traffic, naming both files.
 */
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDriver } from "../../src/drivers/registry.ts";
import type { Driver } from "../../src/drivers/types.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { type OpcuaFixture, opcuaDevice, startOpcuaFixture } from "./opcua-fixture.ts";
import { makeCertificate } from "./opcua-openssl.ts";

const lines: string[] = [];
const log = createLogger({
  level: "debug",
  destination: new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  }),
});
const ctx = () => ({ signal: new AbortController().signal, log });
const TAGS = [{ name: "batch", node: "nsu=urn:plc2mqtt:teststand;s=TestStand.BatchId" }];

const users = mkdtempSync(join(tmpdir(), "plc2mqtt-opcua-users-"));
let fixture: OpcuaFixture;

function userCertificate(name: string): { cert: string; key: string } {
  const files = { cert: join(users, `${name}.pem`), key: join(users, `${name}.key`) };
  makeCertificate({
    dir: users,
    ...files,
    commonName: name,
    days: 365,
    altNames: [`URI:urn:plc2mqtt:test:user:${name}`],
  });
  return files;
}

const trusted = userCertificate("operator-x509");
const stranger = userCertificate("stranger-x509");

beforeAll(async () => {
  fixture = await startOpcuaFixture({
    allowAnonymous: false,
    users: { operator: "s3cret" },
    trustedUserCertificates: [trusted.cert],
  });
});
afterAll(async () => {
  await fixture?.close();
  rmSync(users, { recursive: true, force: true });
});

function driver(auth: Record<string, unknown>): Driver {
  const device = opcuaDevice(fixture.sim.endpointUrl, {
    tags: TAGS,
    security: { mode: "SignAndEncrypt", policy: "auto" },
    auth,
  });
  return createDriver(device, { dataDir: fixture.dataDir });
}

async function refusal(d: Driver): Promise<unknown> {
  try {
    return await d.connect(ctx()).then(
      () => undefined,
      (e: unknown) => e,
    );
  } finally {
    await d.close();
  }
}

describe("OPC UA X.509 user identity", () => {
  it("opens a SignAndEncrypt session with a trusted user certificate and reads", async () => {
    lines.length = 0;
    const d = driver({ type: "certificate", ...trusted });
    try {
      await d.connect(ctx());
      const [sample] = await d.read!(ctx());
      expect(sample).toMatchObject({ tag: "batch", quality: "good", value: "B0001" });
    } finally {
      await d.close();
    }
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string });
    const open = parsed.find((l) => l.msg === "OPC UA session open");
    expect(open).toMatchObject({ mode: "SignAndEncrypt", identity: "certificate" });
    // Long-lived server and own certificates: nothing to warn about (see opcua-expiry.test.ts).
    expect(parsed.filter((l) => /^certificate (expires|has expired)/.test(l.msg))).toEqual([]);
  });

  it("refuses an untrusted user certificate with OPCUA_AUTH naming its file, not its key", async () => {
    lines.length = 0;
    const err = await refusal(driver({ type: "certificate", ...stranger }));
    const thumbprint = new X509Certificate(readFileSync(stranger.cert)).fingerprint
      .replace(/:/g, "")
      .toLowerCase();
    expect(err).toMatchObject({
      code: "OPCUA_AUTH",
      message: expect.stringContaining(
        `refused the session for user certificate ${stranger.cert} (stranger-x509, thumbprint ${thumbprint}): BadIdentityTokenRejected`,
      ),
    });
    const message = (err as Error).message;
    expect(message).toContain("must trust this certificate in the server's user certificate store");
    const keyBody = readFileSync(stranger.key, "utf8").split("\n")[1]!;
    expect(message).not.toContain(keyBody);
    expect(lines.join("")).not.toContain(keyBody);
    // The simulator put it aside for review, as a server does with an unknown user certificate.
    const rejected = join(fixture.dir, "sim", "user", "rejected");
    expect(readdirSync(rejected).some((f) => f.includes("stranger-x509"))).toBe(true);
  });

  it("refuses a trusted certificate signed with another key, pointing at the key file", async () => {
    const err = await refusal(
      driver({ type: "certificate", cert: trusted.cert, key: stranger.key }),
    );
    expect(err).toMatchObject({
      code: "OPCUA_AUTH",
      message: expect.stringContaining(
        `BadUserSignatureInvalid; the server rejects the signature: is ${stranger.key} the key of this certificate?`,
      ),
    });
  });

  it("names both files when the key cannot be read, before connecting", async () => {
    const missing = join(users, "missing.key");
    const err = await refusal(driver({ type: "certificate", cert: trusted.cert, key: missing }));
    expect(err).toMatchObject({
      code: "OPCUA_AUTH",
      message: expect.stringContaining(`${trusted.cert} or its key ${missing}`),
    });
  });
});
