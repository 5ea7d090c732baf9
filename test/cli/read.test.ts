/** `plc2mqtt read`, the built CLI, against the simulator: table, JSON, bad tags, --decode. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { runCli } from "../support/cli.ts";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-read-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A gateway.yaml in a fresh temp folder with one Modbus TCP device; `tags`: YAML list lines. */
function modbusConfig(id: string, port: number, tags: string): string {
  const path = join(tempDir(), "gateway.yaml");
  writeFileSync(
    path,
    `version: 1
gateway: { id: test-gw }
devices:
  - id: ${id}
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    tags:
${tags}`,
  );
  return path;
}

describe("plc2mqtt read", () => {
  let sim: ModbusSimulator;
  let config: string;

  beforeAll(async () => {
    sim = await startModbusSimulator({ port: 0 });
    sim.setRegisters(1, "HR40", [1]);
    sim.setValue(1, "HR10", 123.456, { type: "float32", byteOrder: "CDAB" });
    sim.setRegisters(1, "HR0", [42]);
    sim.setBit(1, "C3", true);
    sim.setValue(1, "HR20", "LOT-7", { type: "string", byteOrder: "ABCD", length: 4 });
    sim.faults.exception(2, { unitId: 9 });
    config = modbusConfig(
      "press",
      sim.port,
      `      - { name: count, address: HR0 }
      - { name: temperature, address: HR10, type: float32, byte_order: CDAB, unit: degC }
      - { name: lot, address: HR20, type: string, length: 4 }
      - { name: running, address: C3 }
      - { name: broken, address: HR0, unit_id: 9 }
      - { name: mode, address: HR40, states: { "0": stopped, "1": running, "2": fault } }
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
    const dead = join(tempDir(), "dead.yaml");
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

  it("point 7: a state tag shows its state name beside the raw value", async () => {
    const table = await runCli(["read", "-c", config, "press", "mode"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/mode\s+1 \(running\)\s+good\s+0001/);
    const json = await runCli(["read", "-c", config, "press", "mode", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ tag: "mode", value: 1, state: "running" });
  });

  it.each([
    [["--decode", "HR10", "--count", "0"], /--count must be a whole number from 1 to 125/],
    [["--decode", "HR10", "--count", "126"], /--count must be a whole number from 1 to 125/],
    [["--decode", "HR10", "--count", "2.5"], /--count must be a whole number from 1 to 125/],
    [["--decode", "HR10", "--unit", "256"], /--unit must be a whole number from 0 to 255/],
    [["--decode", "HR65535", "--count", "2"], /runs past the last Modbus address 65535/],
    [["--count", "4"], /--count applies to --decode only/],
    [["count", "--decode", "HR10"], /--decode reads a raw register range: give no tag names/],
  ])(
    "point 7: read %j is refused up front with a clear message, nothing sent",
    async (args, message) => {
      const before = sim.requests.length;
      const connections = sim.connections;
      const { code, stderr } = await runCli(["read", "-c", config, "press", ...args]);
      expect(code).toBe(2);
      expect(stderr).toMatch(message);
      expect(stderr).not.toMatch(/exception|write/i);
      expect(sim.requests.length).toBe(before);
      expect(sim.connections).toBe(connections);
    },
  );
});

describe("plc2mqtt read, a device with holes and a smaller request size", () => {
  let sim: ModbusSimulator;
  let config: string;

  beforeAll(async () => {
    sim = await startModbusSimulator({
      port: 0,
      holes: ["HR101", "HR105"],
      maxRegistersPerRequest: 4,
    });
    sim.setRegisters(1, "HR100", [10, 0, 12, 13, 0, 0, 16]);
    sim.setRegisters(1, "HR0", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    config = modbusConfig(
      "meter",
      sim.port,
      `      - { name: a, address: HR100 }
      - { name: b, address: HR102 }
      - { name: c, address: HR103 }
      - { name: d, address: HR106 }
      - { name: ghost, address: HR105 }
${Array.from({ length: 10 }, (_, i) => `      - { name: r${i}, address: HR${i} }\n`).join("")}`,
    );
  });
  afterAll(async () => {
    await sim.close();
  });

  it("point 9: read prints the read plan after learning: the holes, the requests around them, the learned size", async () => {
    const { code, stdout } = await runCli(["read", "-c", config, "meter"]);
    expect(code).toBe(1); // ghost is bad
    expect(stdout).toMatch(/^a\s+10\s+good/m);
    expect(stdout).toMatch(/^b\s+12\s+good/m);
    expect(stdout).toMatch(/^c\s+13\s+good/m);
    expect(stdout).toMatch(/^d\s+16\s+good/m);
    expect(stdout).toMatch(/^ghost\s+null\s+bad\s+HR105 does not exist on unit 1/m);
    const plan = stdout.slice(stdout.indexOf("read plan:"));
    expect(plan).toContain("unit 1 HR100+1 every 1s: a");
    expect(plan).toContain("unit 1 HR102+2 every 1s: b, c");
    expect(plan).toContain("unit 1 HR106+1 every 1s: d");
    expect(plan).toContain("unit 1 HR105+1 every 1s: ghost (asked alone: missing)");
    expect(plan).toContain("unit 1: HR101, HR105 do not exist: reads go around them");
    // HR0..HR9 in one read of 10: refused (exception 3), then halved until the parts answer
    expect(stdout).toMatch(/^r9\s+9\s+good/m);
    expect(plan).toMatch(
      /unit 1 refused a read of \d+ registers: reading at most 3 per request \(pin it with max_registers_per_request: 3\)/,
    );
    expect(plan).toContain("unit 1 HR0+3 every 1s: r0, r1, r2");
  });
});
