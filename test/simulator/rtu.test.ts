/**
 * RTU framing: RTU frames over TCP against a raw socket (CRC, bad frames, silent units,
 * broadcast, pipelining), and RTU on a serial line through a socat pty pair with mbpoll.
 */
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import {
  hex,
  type PtyPair,
  pdu,
  ptyPair,
  type RawClient,
  rawClient,
  rtu,
  run,
  settle,
} from "./helpers.ts";

let sim: ModbusSimulator | undefined;
let client: RawClient | undefined;
let pty: PtyPair | undefined;

afterEach(async () => {
  client?.close();
  await sim?.close();
  await pty?.close();
  sim = undefined;
  client = undefined;
  pty = undefined;
});

async function startRtuOverTcp(units?: number[]) {
  sim = await startModbusSimulator({ framing: "rtu-over-tcp", ...(units ? { units } : {}) });
  sim.setRegisters(1, "HR100", [0x1234, 0xabcd]);
  client = await rawClient(sim.port);
  return { sim, client };
}

describe("RTU over TCP", () => {
  it("answers reads and writes in RTU frames with a CRC", async () => {
    const { sim, client } = await startRtuOverTcp();
    client.send(rtu(1, pdu(3, 100, 2)));
    expect(hex(await client.read(9))).toBe(hex(rtu(1, [3, 4, 0x12, 0x34, 0xab, 0xcd])));
    client.send(rtu(1, [...pdu(16, 300, 2), 4, 0, 5, 0, 6]));
    expect(hex(await client.read(8))).toBe(hex(rtu(1, pdu(16, 300, 2))));
    expect(sim.getRegisters(1, "HR300", 2)).toEqual([5, 6]);
    client.send(rtu(1, [0x11]));
    expect(hex(await client.read(5))).toBe(hex(rtu(1, [0x91, 1])));
    expect(sim.requests.map((r) => r.transport)).toEqual([
      "rtu-over-tcp",
      "rtu-over-tcp",
      "rtu-over-tcp",
    ]);
  });

  it("ignores a frame with a bad CRC and answers the next one", async () => {
    const { sim, client } = await startRtuOverTcp();
    const bad = rtu(1, pdu(3, 100, 1));
    bad[bad.length - 1]! ^= 0xff;
    client.send(Buffer.concat([bad, rtu(1, pdu(3, 101, 1))]));
    expect(hex(await client.read(7))).toBe(hex(rtu(1, [3, 2, 0xab, 0xcd])));
    await settle();
    expect(client.pending().length).toBe(0);
    expect(sim.requests).toHaveLength(1);
  });

  it("stays silent for units it does not serve and for broadcasts, which still write", async () => {
    const { sim, client } = await startRtuOverTcp([0, 1]);
    client.send(
      Buffer.concat([rtu(7, pdu(3, 100, 1)), rtu(0, pdu(6, 5, 77)), rtu(1, pdu(3, 100, 1))]),
    );
    expect(hex(await client.read(7))).toBe(hex(rtu(1, [3, 2, 0x12, 0x34])));
    await settle();
    expect(client.pending().length).toBe(0);
    expect(sim.getRegisters(0, "HR5", 1)).toEqual([77]);
    expect(sim.requests.map((r) => r.unitId)).toEqual([7, 0, 1]);
  });

  it("reassembles frames split across chunks and answers pipelined ones in order", async () => {
    const { client } = await startRtuOverTcp();
    const bytes = Buffer.concat([rtu(1, pdu(3, 100, 1)), rtu(1, pdu(3, 101, 1))]);
    for (let i = 0; i < bytes.length; i += 5) {
      client.send(bytes.subarray(i, i + 5));
      await settle(5);
    }
    expect(hex(await client.read(14))).toBe(
      hex(rtu(1, [3, 2, 0x12, 0x34])) + hex(rtu(1, [3, 2, 0xab, 0xcd])),
    );
  });

  it("applies malformed faults in RTU terms: wrong unit id, garbage with a bad CRC", async () => {
    const { sim, client } = await startRtuOverTcp();
    sim.faults.malformed("wrong-transaction-id");
    client.send(rtu(1, pdu(3, 100, 1)));
    expect(hex(await client.read(7))).toBe(hex(rtu(2, [3, 2, 0x12, 0x34])));
    sim.faults.clear();
    sim.faults.malformed("garbage");
    client.send(rtu(1, pdu(3, 100, 1)));
    const head = await client.read(8);
    await settle();
    const bytes = Buffer.concat([head, client.pending()]);
    const body = [...bytes.subarray(0, -2)];
    expect(hex(bytes.subarray(-2))).not.toBe(hex(rtu(body[0]!, body.slice(1)).subarray(-2)));
  });
});

describe("RTU on a serial line (socat pty pair)", () => {
  it("serves mbpoll over the pty: reads, writes, and silence for other units", async () => {
    pty = await ptyPair();
    sim = await startModbusSimulator({ serialPath: pty.a, units: [1] });
    expect(sim.port).toBe(0);
    sim.setRegisters(1, "HR100", [11, 22]);
    const rtuArgs = ["-m", "rtu", "-b", "19200", "-P", "none", "-0", "-1"];
    const read = await run("mbpoll", [...rtuArgs, "-a", "1", "-r", "100", "-c", "2", pty.b]);
    expect(read.stdout).toMatch(/\[100\]:\s+11\s+\[101\]:\s+22/);
    await run("mbpoll", [...rtuArgs, "-a", "1", "-r", "300", pty.b, "5", "6"]);
    expect(sim.getRegisters(1, "HR300", 2)).toEqual([5, 6]);
    const other = await run("mbpoll", [...rtuArgs, "-a", "2", "-o", "0.3", "-r", "1", pty.b]).then(
      () => "answered",
      (err: { stdout: string; stderr: string }) => `${err.stdout}${err.stderr}`,
    );
    expect(other).toMatch(/timed out/i);
    expect(sim.requests.map((r) => [r.unitId, r.functionCode, r.transport])).toEqual([
      [1, 3, "serial"],
      [1, 16, "serial"],
      [2, 3, "serial"],
    ]);
  });

  it("serves TCP and serial at once when a port is given, from one memory", async () => {
    pty = await ptyPair();
    sim = await startModbusSimulator({ serialPath: pty.a, port: 0 });
    expect(sim.port).toBeGreaterThan(0);
    const rtuArgs = ["-m", "rtu", "-b", "19200", "-P", "none", "-0", "-1", "-a", "1"];
    await run("mbpoll", [...rtuArgs, "-r", "7", pty.b, "4242"]);
    const read = await run("mbpoll", [
      "-m",
      "tcp",
      "-p",
      `${sim.port}`,
      "-a",
      "1",
      "-r",
      "7",
      "-0",
      "-1",
      "127.0.0.1",
    ]);
    expect(read.stdout).toMatch(/\[7\]:\s+4242/);
  });

  it("releases the serial port on close: a process using it exits by itself", async () => {
    pty = await ptyPair();
    const script = fileURLToPath(new URL("./fixtures/close-then-exit.ts", import.meta.url));
    const { stdout } = await run(process.execPath, [script, pty.a], { timeout: 20_000 });
    expect(stdout).toBe("closed after 1 request(s)\n");
    // The pty is free again: a second simulator can open it and answer on it.
    sim = await startModbusSimulator({ serialPath: pty.a });
    sim.setRegisters(1, "HR1", [9]);
    const rtuArgs = ["-m", "rtu", "-b", "19200", "-P", "none", "-0", "-1", "-a", "1", "-r", "1"];
    expect((await run("mbpoll", [...rtuArgs, pty.b])).stdout).toMatch(/\[1\]:\s+9\s/);
  });
});
