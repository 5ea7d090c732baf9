/**
 * `plc2mqtt browse` (the built CLI) against the simulator, over SignAndEncrypt with the server
 * trusted in the PKI folder: the YAML it writes passes `plc2mqtt validate` unchanged, carries
 * namespace-URI node ids, types, units and ranges, and run as a config under the DriverRunner
 * yields a good sample for every browsed variable; `plc2mqtt read` reads it once. An untrusted server is refused with the
 * trust command. Issue 13: `browse -c gateway.yaml` browses with the gateway's own PKI (point
 * 7), and a None-only server browsed with the default security gets the flag that works
 * (point 1).
 */
import "node-opcua";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_VARIABLES } from "../../simulators/opcua/index.ts";
import { DriverRunner } from "../../src/app/driver-runner.ts";
import { loadConfig } from "../../src/config/load.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { createEngine, engineDeviceFromConfig } from "../../src/engine/index.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { type OpcuaFixture, startOpcuaFixture } from "../drivers/opcua-fixture.ts";
import { runCli } from "../support/cli.ts";
import { eventually } from "../support/resources.ts";

let fixture: OpcuaFixture;

beforeAll(async () => {
  fixture = await startOpcuaFixture();
});
afterAll(async () => {
  await fixture?.close();
});

describe("plc2mqtt browse", () => {
  it("writes a YAML that validates and, run as a config, yields telemetry for every variable", async () => {
    const out = join(fixture.dir, "browsed.yaml");
    const browsed = await runCli([
      "browse",
      fixture.sim.endpointUrl,
      "--pki-dir",
      fixture.pkiDir,
      "--data-dir",
      fixture.dataDir,
      "--device",
      "stand",
      "-o",
      out,
    ]);
    // one tag per simulator variable
    expect(browsed.stderr).toContain(`wrote ${ALL_VARIABLES.length} tags`);
    expect(browsed.code).toBe(0);
    const yaml = readFileSync(out, "utf8");
    expect(yaml).toContain(
      `{ name: TestStand.Measurement1, node: "nsu=urn:plc2mqtt:teststand;s=TestStand.Measurement1", type: float64, unit: "mm", range: { min: 0, max: 50 } }`,
    );
    expect(yaml).toMatch(/name: TestStand.Curve, node: "[^"]+", type: json/);
    expect(yaml).toMatch(/name: TestStand.Types.Int64, node: "[^"]+", type: int64/);
    const validated = await runCli(["validate", "-c", out]);
    expect(validated.stdout + validated.stderr).toMatch(
      new RegExp(`ok: gateway .*1 device, ${ALL_VARIABLES.length} tags`),
    );
    expect(validated.code).toBe(0);

    const read = await runCli([
      "read",
      "-c",
      out,
      "stand",
      "TestStand.BatchId",
      "TestStand.Types.Int64",
      "--json",
    ]);
    expect(read.code).toBe(0);
    const [batch, big] = read.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(batch).toMatchObject({ tag: "TestStand.BatchId", value: "B0001", quality: "good" });
    expect(big).toMatchObject({ value: "-9007199254740993", quality: "good" });

    const { config } = await loadConfig(out, {});
    const device = config.devices[0]!;
    expect(device.tags).toHaveLength(ALL_VARIABLES.length);
    const seen = new Map<string, TagSample>();
    // the browsed map run as a config: samples through the engine, as the daemon does
    const engine = createEngine([engineDeviceFromConfig(device)]);
    const telemetry = new Set<string>();
    const runner = new DriverRunner({
      driver: createDriver(device, { dataDir: config.gateway.data_dir }),
      log: silentLogger(),
      onSamples: (samples) => {
        for (const s of samples) seen.set(s.tag, s);
        for (const e of engine.apply(samples, Date.now())) {
          if (e.type === "plc2mqtt.telemetry") telemetry.add(e.subject);
        }
      },
      reconnect: { minMs: 50, maxMs: 500 },
    });
    runner.start();
    try {
      await eventually(
        () => telemetry.size === device.tags.length,
        15_000,
        "telemetry for every browsed variable",
      );
    } finally {
      await runner.stop();
    }
    for (const s of seen.values()) expect(s.quality, `${s.tag}: ${s.reason}`).not.toBe("bad");
    expect(seen.get("TestStand.Types.StatusCode")?.quality).toBe("good");
  }, 120_000);

  it("filters, and refuses an untrusted server naming the trust command", async () => {
    const filtered = await runCli([
      "browse",
      fixture.sim.endpointUrl.replace("opc.tcp://", "opcua://"), // PRODUCT.md's spelling

      "--pki-dir",
      fixture.pkiDir,
      "--root",
      "/TestStand",
      "--filter",
      "Types/*Int*",
    ]);
    expect(`${filtered.stderr}${filtered.code}`).toMatch(/wrote 6 tags\n0$/);
    const names = [...filtered.stdout.matchAll(/name: (\S+),/g)].map((m) => m[1]);
    expect(names.sort()).toEqual(
      ["Int16", "Int32", "Int64", "UInt16", "UInt32", "UInt64"].map((n) => `Types.${n}`),
    );
    const untrusted = join(fixture.dir, "other-pki");
    const refused = await runCli(["browse", fixture.sim.endpointUrl, "--pki-dir", untrusted]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      new RegExp(`OPCUA_UNTRUSTED: .*plc2mqtt pki trust --pki-dir ${untrusted} [0-9a-f]{40}`),
    );
  }, 120_000);

  it("point 7: browse -c gateway.yaml uses the gateway's PKI (<data_dir>/pki) and writes its data_dir", async () => {
    // the simulator is trusted in the gateway's PKI only: nothing else would let browse in
    const config = join(fixture.dir, "gateway-for-browse.yaml");
    writeFileSync(
      config,
      `version: 1\ngateway: { id: gw, data_dir: ${fixture.dataDir} }\ndevices:\n  - { id: s, protocol: opcua, endpoint: "${fixture.sim.endpointUrl}", tags: [{ name: t, node: "i=2258" }] }\n`,
    );
    const browsed = await runCli([
      "browse",
      fixture.sim.endpointUrl,
      "-c",
      config,
      "--root",
      "/TestStand",
      "--filter",
      "Types/Int16",
    ]);
    expect(browsed.stderr).toMatch(/wrote 1 tags\n$/);
    expect(browsed.code).toBe(0);
    expect(browsed.stdout).toContain(`data_dir: ${JSON.stringify(fixture.dataDir)}`);
    expect(browsed.stdout).toContain("name: Types.Int16");
  }, 120_000);

  it("point 1: with the default security, a None-only server gets the suggestion --security None", async () => {
    const noneOnly = await startOpcuaFixture({ security: ["None"] });
    try {
      const refused = await runCli([
        "browse",
        noneOnly.sim.endpointUrl,
        "--pki-dir",
        noneOnly.pkiDir,
      ]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("OPCUA_SECURITY");
      expect(refused.stderr).toContain("it offers: None");
      expect(refused.stderr).toContain("Browse it with --security None");
      const args = ["--root", "/TestStand", "--filter", "Types/Int16"];
      const browsed = await runCli([
        "browse",
        noneOnly.sim.endpointUrl,
        "--pki-dir",
        noneOnly.pkiDir,
        "--security",
        "None",
        ...args,
      ]);
      expect(browsed.stderr).toMatch(/wrote 1 tags\n$/);
      expect(browsed.code).toBe(0);
    } finally {
      await noneOnly.close();
    }
  }, 120_000);
});
