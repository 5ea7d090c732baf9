/**
 * Independent Modbus clients against the simulator: mbpoll (C, libmodbus) over TCP, and
 * Debian's pymodbus over TCP with MBAP and with RTU framing.
 */
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { run } from "./helpers.ts";

let sim: ModbusSimulator | undefined;

afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** mbpoll reads, or writes `values` (given after the host, as mbpoll wants them). */
function mbpoll(port: number, args: string[], values: string[] = []) {
  const common = ["-m", "tcp", "-p", `${port}`, "-0", "-1", "-o", "2"];
  return run("mbpoll", [...common, ...args, "127.0.0.1", ...values]);
}

describe("mbpoll", () => {
  it("reads registers, floats in both word orders, coils and discrete inputs", async () => {
    sim = await startModbusSimulator();
    sim.setRegisters(1, "HR100", [1, 65535, 300]);
    sim.setValue(1, "IR10", 25.5, { type: "float32", byteOrder: "CDAB" });
    sim.setValue(1, "IR20", -1.25, { type: "float32", byteOrder: "ABCD" });
    sim.setBit(1, "C6", true);
    sim.setBit(1, "DI13", true);
    expect((await mbpoll(sim.port, ["-a", "1", "-r", "100", "-c", "3"])).stdout).toMatch(
      /\[100\]:\s+1\s+\[101\]:\s+65535 \(-1\)\s+\[102\]:\s+300/,
    );
    // mbpoll reads floats low word first by default (CDAB), high word first with -B.
    expect((await mbpoll(sim.port, ["-t", "3:float", "-r", "10"])).stdout).toMatch(
      /\[10\]:\s+25.5\s/,
    );
    expect((await mbpoll(sim.port, ["-t", "3:float", "-B", "-r", "20"])).stdout).toMatch(
      /\[20\]:\s+-1.25\s/,
    );
    expect((await mbpoll(sim.port, ["-t", "0", "-r", "5", "-c", "2"])).stdout).toMatch(
      /\[5\]:\s+0\s+\[6\]:\s+1/,
    );
    expect((await mbpoll(sim.port, ["-t", "1", "-r", "13"])).stdout).toMatch(/\[13\]:\s+1/);
  });

  it("writes registers and coils", async () => {
    sim = await startModbusSimulator();
    await mbpoll(sim.port, ["-r", "40"], ["123", "65534"]);
    expect(sim.getRegisters(1, "HR40", 2)).toEqual([123, 0xfffe]);
    await mbpoll(sim.port, ["-t", "0", "-r", "8"], ["1"]);
    expect(sim.getBit(1, "C8")).toBe(true);
  });

  it("reads the unit ids it is given and gets exception 0x0B from the others", async () => {
    sim = await startModbusSimulator({ units: [3] });
    sim.setRegisters(3, "HR0", [33]);
    expect((await mbpoll(sim.port, ["-a", "3", "-r", "0"])).stdout).toMatch(/\[0\]:\s+33/);
    const other = await mbpoll(sim.port, ["-a", "4", "-r", "0"]).then(
      () => "answered",
      (err: { stdout: string; stderr: string }) => `${err.stdout}${err.stderr}`,
    );
    expect(other).toMatch(/Target device failed to respond/i);
  });
});

describe("pymodbus", () => {
  const script = fileURLToPath(new URL("./pymodbus-client.py", import.meta.url));
  for (const framing of ["tcp", "rtu-over-tcp"] as const) {
    it(`reads and writes every table over ${framing}`, async () => {
      sim = await startModbusSimulator({ framing });
      sim.setRegisters(2, "HR100", [1, 2, 3]);
      sim.setRegisters(2, "IR10", [0x4142, 0x4344]);
      sim.setBit(2, "C6", true);
      sim.setBit(2, "DI13", true);
      const pyFraming = framing === "tcp" ? "socket" : "rtu";
      const { stdout } = await run("/usr/bin/python3", [script, `${sim.port}`, pyFraming, "2"]);
      const result = JSON.parse(stdout) as Record<string, unknown>;
      expect(result).toEqual({
        holding: [1, 2, 3],
        input: [0x4142, 0x4344],
        coils: [false, true, false],
        discrete: [false, true],
        written_registers: [7, 8, 9, 10],
        written_coils: [true, false, true, true],
        bad_address: expect.stringMatching(/IllegalAddress/),
      });
      expect(sim.getRegisters(2, "HR300", 4)).toEqual([7, 8, 9, 10]);
      expect(new Set(sim.requests.map((r) => r.transport))).toEqual(new Set([framing]));
    });
  }
});
