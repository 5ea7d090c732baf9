/**
 * The simulator's Modbus TCP server against raw sockets: exact response bytes for every
 * function code, exceptions, unit ids, pipelining, split frames, recording and closing.
 */
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { hex, mbap, pdu, type RawClient, rawClient, run, settle, until } from "./helpers.ts";

let sim: ModbusSimulator | undefined;
let client: RawClient | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  await sim?.close();
  sim = undefined;
});

async function start(options: Parameters<typeof startModbusSimulator>[0] = {}) {
  sim = await startModbusSimulator(options);
  client = await rawClient(sim.port);
  return { sim, client };
}

/** Sends one request and returns the response PDU (after checking the MBAP header). */
async function ask(c: RawClient, tid: number, unit: number, request: number[]): Promise<string> {
  c.send(mbap(tid, unit, request));
  const header = await c.read(7);
  expect(header.readUInt16BE(0)).toBe(tid);
  expect(header.readUInt16BE(2)).toBe(0);
  expect(header[6]).toBe(unit);
  return hex(await c.read(header.readUInt16BE(4) - 1));
}

describe("Modbus TCP function codes", () => {
  it("reads holding and input registers (3, 4) as big-endian words", async () => {
    const { sim, client } = await start();
    sim.setRegisters(1, "HR100", [0x1234, 0xabcd]);
    sim.setRegisters(1, "IR10", [0x0001]);
    client.send(mbap(7, 1, pdu(3, 100, 2)));
    expect(hex(await client.read(13))).toBe("000700000007010304" + "1234abcd");
    expect(await ask(client, 8, 1, pdu(4, 10, 2))).toBe("040400010000");
  });

  it("reads coils and discrete inputs (1, 2) packed least significant bit first", async () => {
    const { sim, client } = await start();
    for (const at of ["C5", "C7", "C12", "C14"]) sim.setBit(1, at, true);
    sim.setBit(1, "DI3", true);
    expect(await ask(client, 1, 1, pdu(1, 5, 10))).toBe("01028502");
    expect(await ask(client, 2, 1, pdu(2, 0, 4))).toBe("020108");
  });

  it("writes a coil and a register (5, 6) and echoes the request", async () => {
    const { sim, client } = await start();
    expect(await ask(client, 1, 1, pdu(5, 9, 0xff00))).toBe("050009ff00");
    expect(sim.getBit(1, "C9")).toBe(true);
    expect(await ask(client, 2, 1, pdu(5, 9, 0))).toBe("0500090000");
    expect(sim.getBit(1, "C9")).toBe(false);
    expect(await ask(client, 3, 1, pdu(5, 9, 0x1234))).toBe("8503");
    expect(await ask(client, 4, 1, pdu(6, 40, 0xbeef))).toBe("060028beef");
    expect(sim.getRegisters(1, "HR40", 1)).toEqual([0xbeef]);
  });

  it("writes coils and registers (15, 16) and answers address and quantity", async () => {
    const { sim, client } = await start();
    expect(await ask(client, 1, 1, [...pdu(15, 20, 10), 2, 0xcd, 0x01])).toBe("0f0014000a");
    const coils = Array.from({ length: 10 }, (_, i) => sim.getBit(1, `C${20 + i}`));
    expect(coils).toEqual([true, false, true, true, false, false, true, true, true, false]);
    expect(await ask(client, 2, 1, [...pdu(16, 300, 2), 4, ...pdu(0, 7, 0xfffe).slice(1)])).toBe(
      "10012c0002",
    );
    expect(sim.getRegisters(1, "HR300", 2)).toEqual([7, 0xfffe]);
  });

  it("writes then reads in one request (23)", async () => {
    const { sim, client } = await start();
    sim.setRegisters(1, "HR499", [0x1111]);
    const request = [...pdu(23, 499, 3, 500, 2), 4, ...pdu(0, 0x2222, 0x3333).slice(1)];
    expect(await ask(client, 1, 1, request)).toBe("1706111122223333");
    expect(sim.getRegisters(1, "HR500", 2)).toEqual([0x2222, 0x3333]);
  });

  it("answers exceptions 1, 2 and 3 and changes nothing", async () => {
    const { sim, client } = await start();
    expect(await ask(client, 1, 1, [0x2b, 0x0e, 1, 0])).toBe("ab01");
    expect(await ask(client, 2, 1, pdu(3, 0, 0))).toBe("8303");
    expect(await ask(client, 3, 1, pdu(3, 0, 126))).toBe("8303");
    expect(await ask(client, 4, 1, pdu(1, 0, 2001))).toBe("8103");
    expect(await ask(client, 5, 1, pdu(3, 65535, 2))).toBe("8302");
    expect(await ask(client, 6, 1, pdu(2, 65000, 2000))).toBe("8202");
    expect(await ask(client, 7, 1, [...pdu(16, 10, 2), 2, 0, 1])).toBe("9003");
    expect(await ask(client, 8, 1, [...pdu(16, 65535, 2), 4, 0, 1, 0, 2])).toBe("9002");
    expect(await ask(client, 9, 1, [3, 0])).toBe("8303");
    expect(sim.getRegisters(1, "HR10", 1)).toEqual([0]);
  });

  it("point 9: a device with holes answers 2 to any request touching one; a smaller size answers 3", async () => {
    const { sim, client } = await start({
      holes: ["HR101", "HR105", "C3"],
      maxRegistersPerRequest: 64,
      maxBitsPerRequest: 16,
    });
    sim.setRegisters(1, "HR100", [1, 0, 2]);
    expect(await ask(client, 1, 1, pdu(3, 100, 7))).toBe("8302");
    expect(await ask(client, 2, 1, pdu(3, 101, 1))).toBe("8302");
    expect(await ask(client, 3, 1, pdu(3, 100, 1))).toBe("03020001");
    expect(await ask(client, 4, 1, pdu(3, 102, 3))).toBe("0306000200000000");
    expect(await ask(client, 5, 1, pdu(4, 101, 1))).toBe("04020000"); // input registers: no hole
    expect(await ask(client, 6, 1, pdu(1, 0, 8))).toBe("8102");
    expect(await ask(client, 7, 1, pdu(6, 105, 9))).toBe("8602"); // writes too
    expect(await ask(client, 8, 1, pdu(3, 0, 64))).toBe(`0380${"0000".repeat(64)}`);
    expect(await ask(client, 9, 1, pdu(3, 0, 65))).toBe("8303"); // size before address
    expect(await ask(client, 10, 1, pdu(3, 90, 65))).toBe("8303");
    expect(await ask(client, 11, 1, pdu(2, 0, 17))).toBe("8203");
    expect(sim.getRegisters(1, "HR105", 1)).toEqual([0]);
  });

  it("answers 0x0B for a unit id that is not served, and keeps units apart", async () => {
    const { sim, client } = await start({ units: [1, 2] });
    sim.setRegisters(2, "HR0", [22]);
    expect(await ask(client, 1, 3, pdu(3, 0, 1))).toBe("830b");
    expect(await ask(client, 2, 2, pdu(3, 0, 1))).toBe("03020016");
    expect(await ask(client, 3, 1, pdu(3, 0, 1))).toBe("03020000");
  });
});

describe("Modbus TCP streams", () => {
  it("answers pipelined requests sent in one chunk, each by its transaction id", async () => {
    const { sim, client } = await start();
    sim.setRegisters(1, "HR0", [10, 11, 12]);
    client.send(
      Buffer.concat([
        mbap(0x0101, 1, pdu(3, 0, 1)),
        mbap(0x0202, 1, pdu(3, 1, 1)),
        mbap(0x0303, 1, pdu(3, 2, 1)),
      ]),
    );
    const responses = await client.read(33);
    expect(hex(responses)).toBe(
      "010100000005010302000a" + "020200000005010302000b" + "030300000005010302000c",
    );
  });

  it("reassembles a request split across chunks, even inside the header", async () => {
    const { sim, client } = await start();
    sim.setRegisters(1, "HR5", [0x5555]);
    const bytes = Buffer.concat([mbap(1, 1, pdu(3, 5, 1)), mbap(2, 1, pdu(3, 5, 1))]);
    for (const piece of [bytes.subarray(0, 3), bytes.subarray(3, 9), bytes.subarray(9, 15)]) {
      client.send(piece);
      await settle(10);
    }
    client.send(bytes.subarray(15));
    expect(hex(await client.read(22))).toBe("00010000000501030255550002000000050103025555");
  });

  it("skips a frame with a protocol id other than 0 and answers the next", async () => {
    const { client } = await start();
    const foreign = mbap(1, 1, pdu(3, 0, 1));
    foreign[3] = 1;
    client.send(Buffer.concat([foreign, mbap(2, 1, pdu(3, 0, 1))]));
    expect(hex(await client.read(11))).toBe("0002000000050103020000");
  });

  it("closes a connection whose MBAP length cannot be resynchronised", async () => {
    const { client } = await start();
    client.send(Buffer.from([0, 1, 0, 0, 0x10, 0, 1, 3, 0, 0, 0, 1]));
    await client.closed;
    expect(client.pending().length).toBe(0);
  });

  it("records every request in order, including refused ones", async () => {
    const { sim, client } = await start({ units: [1] });
    await ask(client, 1, 1, pdu(3, 100, 10));
    await ask(client, 2, 9, pdu(4, 7, 2));
    await ask(client, 3, 1, pdu(6, 5, 1));
    await ask(client, 4, 1, [0x11]);
    expect(sim.requests).toEqual([
      {
        unitId: 1,
        functionCode: 3,
        address: 100,
        quantity: 10,
        transport: "tcp",
        transactionId: 1,
      },
      { unitId: 9, functionCode: 4, address: 7, quantity: 2, transport: "tcp", transactionId: 2 },
      { unitId: 1, functionCode: 6, address: 5, quantity: 1, transport: "tcp", transactionId: 3 },
      {
        unitId: 1,
        functionCode: 0x11,
        address: 0,
        quantity: 0,
        transport: "tcp",
        transactionId: 4,
      },
    ]);
    sim.clearRequests();
    expect(sim.requests).toEqual([]);
  });
});

describe("simulator API and lifecycle", () => {
  it("records nothing when recordRequests is false (long runs)", async () => {
    const { sim, client } = await start({ recordRequests: false });
    expect(await ask(client, 1, 1, pdu(3, 0, 1))).toBe("03020000");
    expect(sim.requests).toEqual([]);
  });

  it("sets typed values with the gateway's codec, bits inside registers included", async () => {
    sim = await startModbusSimulator();
    sim.setValue(1, "IR10", 25.5, { type: "float32", byteOrder: "CDAB" });
    expect(sim.getRegisters(1, "IR10", 2)).toEqual([0x0000, 0x41cc]);
    sim.setValue(1, "HR200", "B2026-0001", { type: "string", byteOrder: "ABCD", length: 6 });
    expect(sim.getRegisters(1, "HR200", 6)).toEqual([0x4232, 0x3032, 0x362d, 0x3030, 0x3031, 0]);
    sim.setRegisters(1, "HR100", [0x8000]);
    sim.setValue(1, "HR100.3", true, { type: "bool", byteOrder: "ABCD" });
    expect(sim.getRegisters(1, "HR100", 1)).toEqual([0x8008]);
    expect(sim.getBit(1, "HR100.15")).toBe(true);
    sim.setValue(1, "C5", true, { type: "bool", byteOrder: "ABCD" });
    expect(sim.getBit(1, "C5")).toBe(true);
    expect(() => sim?.setRegisters(1, "HR65535", [1, 2])).toThrow(/65535/);
    expect(() => sim?.setRegisters(1, "C5", [1])).toThrow(/bit address/);
    expect(() => sim?.getRegisters(256, "HR0", 1)).toThrow(/unit id 256/);
  });

  it("counts connections, drops them on demand, and closes idempotently", async () => {
    const { sim: s, client: first } = await start();
    const second = await rawClient(s.port);
    await until(() => s.connections === 2, "two connections");
    s.dropConnections();
    await Promise.all([first.closed, second.closed]);
    const third = await rawClient(s.port);
    expect(await ask(third, 1, 1, pdu(3, 0, 1))).toBe("03020000");
    expect(s.connections).toBe(3);
    await Promise.all([s.close(), s.close()]);
    await third.closed;
    const refused = await new Promise<string>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port: s.port });
      socket.once("connect", () => resolve("connected"));
      socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
      socket.once("close", () => socket.destroy());
    });
    expect(refused).toBe("ECONNREFUSED");
  });

  it("leaves nothing open after close: a process using it exits by itself", async () => {
    const script = fileURLToPath(new URL("./fixtures/close-then-exit.ts", import.meta.url));
    const { stdout } = await run(process.execPath, [script], { timeout: 20_000 });
    expect(stdout).toBe("closed after 1 request(s)\n");
  });
});
