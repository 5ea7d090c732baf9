/** `plc2mqtt read`, the built CLI, against the simulator: table, JSON, bad tags, --decode. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { runCli } from "../support/cli.ts";

describe("plc2mqtt read", () => {
  let sim: ModbusSimulator;
  let config: string;

  beforeAll(async () => {
    sim = await startModbusSimulator({ port: 0 });
    sim.setValue(1, "HR10", 123.456, { type: "float32", byteOrder: "CDAB" });
    sim.setRegisters(1, "HR0", [42]);
    sim.setBit(1, "C3", true);
    sim.setValue(1, "HR20", "LOT-7", { type: "string", byteOrder: "ABCD", length: 4 });
    sim.faults.exception(2, { unitId: 9 });
    config = join(mkdtempSync(join(tmpdir(), "plc2mqtt-read-")), "gateway.yaml");
    writeFileSync(
      config,
      `version: 1
gateway: { id: test-gw }
devices:
  - id: press
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    tags:
      - { name: count, address: HR0 }
      - { name: temperature, address: HR10, type: float32, byte_order: CDAB, unit: degC }
      - { name: lot, address: HR20, type: string, length: 4 }
      - { name: running, address: C3 }
      - { name: broken, address: HR0, unit_id: 9 }
`,
    );
  });
  afterAll(async () => {
    await sim.close();
  });

  it("prints a table of value, quality and raw registers; exit 1 when a tag reads bad", async () => {
    const { code, stdout } = await runCli(["read", "-c", config, "press"]);
    expect(code).toBe(1);
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^tag\s+value\s+quality\s+raw \(hex\)\s+reason$/);
    expect(stdout).toMatch(/count\s+42\s+good\s+002a/);
    expect(stdout).toMatch(/temperature\s+123\.456\s+good/);
    expect(stdout).toMatch(/lot\s+"LOT-7"\s+good/);
    expect(stdout).toMatch(/running\s+true\s+good/);
    expect(stdout).toMatch(/broken\s+null\s+bad\s+.*exception 2 \(illegal data address\)/);
  });

  it("prints JSON lines for named tags and exits 0 when all are good", async () => {
    const { code, stdout } = await runCli([
      "read",
      "-c",
      config,
      "press",
      "temperature",
      "count",
      "--json",
    ]);
    expect(code).toBe(0);
    const samples = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(samples.map((s) => s.tag).sort()).toEqual(["count", "temperature"]);
    expect(samples.find((s) => s.tag === "temperature")).toMatchObject({
      value: 123.456,
      quality: "good",
      device: "press",
    });
  });

  it("names an unknown device or tag", async () => {
    const device = await runCli(["read", "-c", config, "nope"]);
    expect(device.code).toBe(1);
    expect(device.stderr).toMatch(/no device nope in the config \(devices: press\)/);
    const tag = await runCli(["read", "-c", config, "press", "nope"]);
    expect(tag.code).toBe(1);
    expect(tag.stderr).toMatch(/device press has no tag nope/);
  });

  it("decodes a raw register range in every type and byte order", async () => {
    const { code, stdout } = await runCli([
      "read",
      "-c",
      config,
      "press",
      "--decode",
      "HR10",
      "--count",
      "4",
    ]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/float32\s+CDAB\s+123\.456/);
    const json = await runCli([
      "read",
      "-c",
      config,
      "press",
      "--decode",
      "HR10",
      "--count",
      "2",
      "--json",
    ]);
    const parsed = JSON.parse(json.stdout);
    expect(parsed.words).toHaveLength(2);
    expect(
      parsed.interpretations.some(
        (i: { type: string; byteOrder: string; value: number }) =>
          i.type === "float32" && i.byteOrder === "CDAB" && i.value === 123.456,
      ),
    ).toBe(true);
  });

  it("reports an unreachable device with the address it tried", async () => {
    const dead = join(mkdtempSync(join(tmpdir(), "plc2mqtt-read-")), "dead.yaml");
    writeFileSync(
      dead,
      `version: 1
gateway: { id: test-gw }
devices:
  - { id: gone, protocol: modbus-tcp, host: 127.0.0.1, port: 1, tags: [{ name: a, address: HR0 }] }
`,
    );
    const { code, stderr } = await runCli(["read", "-c", dead, "gone"]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/MODBUS_CONNECT: connect to 127\.0\.0\.1:1 failed/);
    expect(stderr).toMatch(/ECONNREFUSED/);
  });
});
