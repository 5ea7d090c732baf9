/**
 * OPC UA security against the simulator: SignAndEncrypt with each supported policy (and Sign),
 * auto picking the strongest policy offered, an untrusted server certificate refused into
 * rejected/ with the exact `pki trust` command, which (run as the real CLI) makes the same
 * connection succeed; user name logins (a wrong password is refused with a clear error that
 * never shows the password) and the warning for mode None at every connect (issue 13, point 1:
 * through the daemon's repeat limiter too).
 */
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDriver } from "../../src/drivers/registry.ts";
import type { Driver } from "../../src/drivers/types.ts";
import { GatewayError } from "../../src/lib/errors.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { runCli } from "../support/cli.ts";
import { type OpcuaFixture, opcuaDevice, startOpcuaFixture } from "./opcua-fixture.ts";

let fixture: OpcuaFixture;
const lines: Record<string, unknown>[] = [];
const log = pino(
  { level: "info" },
  new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  }),
);
const ctx = () => ({ signal: new AbortController().signal, log });
const TAGS = [{ name: "batch", node: "nsu=urn:plc2mqtt:teststand;s=TestStand.BatchId" }];

beforeAll(async () => {
  fixture = await startOpcuaFixture({ users: { operator: "s3cret" } }, false);
});
afterAll(async () => {
  await fixture?.close();
});

/** `password`: the resolved secret, as the config loader puts it in after the schema check. */
function driver(fields: Record<string, unknown>, password?: string): Driver {
  const device = opcuaDevice(fixture.sim.endpointUrl, { tags: TAGS, ...fields });
  if (password !== undefined && device.protocol === "opcua" && device.auth.type === "username")
    device.auth.password = password;
  return createDriver(device, { dataDir: fixture.dataDir });
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

describe("OPC UA security", () => {
  it("refuses an unknown server certificate into rejected/, then connects after `plc2mqtt pki trust`", async () => {
    const d = driver({});
    const err = await d.connect(ctx()).then(
      () => undefined,
      (e: unknown) => e,
    );
    await d.close();
    expect(err).toBeInstanceOf(GatewayError);
    const e = err as GatewayError;
    expect(e.code).toBe("OPCUA_UNTRUSTED");
    const thumbprint = e.details?.thumbprint as string;
    expect(e.message).toContain(`plc2mqtt pki trust --pki-dir ${fixture.pkiDir} ${thumbprint}`);
    const rejected = readdirSync(join(fixture.pkiDir, "rejected"));
    expect(rejected.some((f) => f.includes(thumbprint))).toBe(true);

    const config = join(fixture.dir, "gateway.yaml");
    writeFileSync(
      config,
      `version: 1\ngateway: { id: gw, data_dir: ${fixture.dataDir} }\ndevices:\n  - { id: stand, protocol: opcua, endpoint: "${fixture.sim.endpointUrl}", tags: [{ name: batch, node: "i=2255" }] }\n`,
    );
    const trusted = await runCli(["pki", "trust", "-c", config, thumbprint.slice(0, 12)]);
    expect(trusted.stderr).toBe("");
    expect(trusted.code).toBe(0);
    expect(readdirSync(join(fixture.pkiDir, "rejected"))).toHaveLength(0);
    const listed = await runCli(["pki", "list", "-c", config, "--json"]);
    const states = listed.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { state: string; thumbprint: string });
    expect(states).toContainEqual(expect.objectContaining({ state: "trusted", thumbprint }));
    expect(states.some((s) => s.state === "own")).toBe(true);
    await readsBatch(driver({}));
  });

  for (const policy of ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]) {
    it(`connects with SignAndEncrypt and ${policy}`, async () => {
      lines.length = 0;
      await readsBatch(driver({ security: { mode: "SignAndEncrypt", policy } }));
      expect(lines).toContainEqual(
        expect.objectContaining({ msg: "OPC UA session open", mode: "SignAndEncrypt", policy }),
      );
    });
  }

  it("picks the strongest policy by default, and connects with Sign", async () => {
    lines.length = 0;
    await readsBatch(driver({}));
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: "OPC UA session open", policy: "Aes256_Sha256_RsaPss" }),
    );
    await readsBatch(driver({ security: { mode: "Sign", policy: "Basic256Sha256" } }));
  });

  it("logs in with user name and password; a wrong password is refused clearly", async () => {
    const auth = { type: "username", username: "operator", password: "${env:OPCUA_PASSWORD}" };
    lines.length = 0;
    await readsBatch(driver({ auth }, "s3cret"));
    const d = driver({ auth }, "wrong-pass");
    await expect(d.connect(ctx())).rejects.toMatchObject({
      code: "OPCUA_AUTH",
      message: expect.stringMatching(/refused the session for user operator: Bad\w+/),
    });
    await d.close();
    expect(JSON.stringify(lines)).not.toContain("s3cret");
  });

  it("point 1: warns about mode None at every connect, also through the daemon's repeat limiter", async () => {
    // the daemon's logger holds back a repeated warning for a minute: the field saw the
    // warning at the first connect only
    const seen: Record<string, unknown>[] = [];
    const limited = createLogger({
      level: "info",
      repeatIntervalMs: 60_000,
      destination: { write: (line: string) => void seen.push(JSON.parse(line)) },
    });
    const d = driver({ security: { mode: "None" } });
    for (let i = 0; i < 3; i++) {
      try {
        await d.connect({ signal: new AbortController().signal, log: limited });
      } finally {
        await d.close();
      }
    }
    const warnings = seen.filter((l) => String(l.msg).includes("security mode None"));
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatchObject({ level: 40, device: "stand-1" });
  });
});
