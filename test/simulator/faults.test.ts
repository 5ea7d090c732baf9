/**
 * Fault injection over Modbus TCP (and RTU over TCP for the reply shapes), asserted on the
 * bytes a raw client receives: delays, exceptions, silence, drops, every malformed kind,
 * duplicated, torn and unsolicited replies, matching rules and clear().
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  type Framing,
  type ModbusSimulator,
  startModbusSimulator,
} from "../../simulators/modbus/index.ts";
import { hex, mbap, pdu, type RawClient, rawClient, rtu, settle, until } from "./helpers.ts";

let sim: ModbusSimulator;
let client: RawClient;
const extra: RawClient[] = [];

async function start(seed = 1, framing: Framing = "tcp") {
  sim = await startModbusSimulator({ seed, framing });
  sim.setRegisters(1, "HR0", [0x1234, 0xabcd, 0x5678]);
  client = await rawClient(sim.port);
}

afterEach(async () => {
  for (const c of [client, ...extra.splice(0)]) c.close();
  await sim.close();
});

describe("fault actions", () => {
  it("delay answers the matching request late while others are answered at once", async () => {
    await start();
    sim.faults.delay(150, { address: 0 });
    client.send(Buffer.concat([mbap(1, 1, pdu(3, 0, 1)), mbap(2, 1, pdu(3, 2, 1))]));
    expect(hex(await client.read(11))).toBe("0002000000050103025678");
    expect(hex(await client.read(11))).toBe("0001000000050103021234");
  });

  it("exception answers the code, for matching requests only, and does not write", async () => {
    await start();
    sim.faults.exception(4, { functionCode: 3 });
    sim.faults.exception(2, { functionCode: 6 });
    client.send(mbap(1, 1, pdu(3, 0, 1)));
    expect(hex(await client.read(9))).toBe("000100000003018304");
    client.send(mbap(2, 1, pdu(4, 0, 1)));
    expect(hex(await client.read(11))).toBe("0002000000050104020000");
    client.send(mbap(3, 1, pdu(6, 0, 9)));
    expect(hex(await client.read(9))).toBe("000300000003018602");
    expect(sim.getRegisters(1, "HR0", 1)).toEqual([0x1234]);
  });

  it("silence never answers the matching request, and does not write", async () => {
    await start();
    sim.faults.silence({ unitId: 2 });
    client.send(Buffer.concat([mbap(1, 2, pdu(6, 0, 9)), mbap(2, 1, pdu(3, 0, 1))]));
    expect(hex(await client.read(11))).toBe("0002000000050103021234");
    await settle();
    expect(client.pending().length).toBe(0);
    expect(sim.getRegisters(2, "HR0", 1)).toEqual([0]);
    expect(sim.requests.map((r) => r.unitId)).toEqual([2, 1]);
  });

  it("drop closes the connection on a matching request; others are still served", async () => {
    await start();
    sim.faults.drop({ address: 50 });
    client.send(mbap(1, 1, pdu(3, 40, 20)));
    await client.closed;
    expect(client.pending().length).toBe(0);
    const next = await rawClient(sim.port);
    extra.push(next);
    next.send(mbap(2, 1, pdu(3, 60, 1)));
    expect(hex(await next.read(11))).toBe("0002000000050103020000");
    expect(sim.requests).toHaveLength(2);
  });

  it("matches address inside [address, address + quantity), and all given fields", async () => {
    await start();
    sim.faults.exception(4, { unitId: 1, functionCode: 3, address: 109 });
    const answers: string[] = [];
    const cases: [number, number, number, number][] = [
      [1, 3, 100, 10],
      [1, 3, 99, 10],
      [1, 3, 109, 1],
      [1, 3, 110, 5],
      [2, 3, 100, 10],
      [1, 4, 100, 10],
    ];
    for (const [i, [unit, fc, address, quantity]] of cases.entries()) {
      client.send(mbap(i, unit, pdu(fc, address, quantity)));
      const header = await client.read(7);
      answers.push(hex(await client.read(header.readUInt16BE(4) - 1)).slice(0, 4));
    }
    expect(answers).toEqual(["8304", "0314", "8304", "030a", "0314", "0414"]);
  });

  it("clear removes every fault; the most recent matching action wins", async () => {
    await start();
    sim.faults.exception(4);
    sim.faults.exception(6, { address: 0 });
    client.send(mbap(1, 1, pdu(3, 0, 1)));
    expect(hex(await client.read(9))).toBe("000100000003018306");
    sim.faults.clear();
    client.send(mbap(2, 1, pdu(3, 0, 1)));
    expect(hex(await client.read(11))).toBe("0002000000050103021234");
  });
});

describe("malformed responses", () => {
  it("short-frame: half the PDU, MBAP length matching what is sent", async () => {
    await start();
    sim.faults.malformed("short-frame");
    client.send(mbap(1, 1, pdu(3, 0, 2)));
    expect(hex(await client.read(10))).toBe("00010000000401030412");
    await settle();
    expect(client.pending().length).toBe(0);
  });

  it("wrong-transaction-id: the correct response under a transaction id not asked", async () => {
    await start();
    sim.faults.malformed("wrong-transaction-id");
    client.send(mbap(5, 1, pdu(3, 0, 1)));
    expect(hex(await client.read(11))).toBe("8005000000050103021234");
  });

  it("byte-count-mismatch: a well-framed response for a different quantity", async () => {
    await start();
    sim.faults.malformed("byte-count-mismatch");
    client.send(mbap(1, 1, pdu(3, 0, 3)));
    expect(hex(await client.read(13))).toBe("00010000000701030412" + "34abcd");
    client.send(mbap(2, 1, pdu(3, 0, 1)));
    expect(hex(await client.read(13))).toBe("0002000000070103041234" + "0000");
    client.send(mbap(3, 1, pdu(1, 0, 3)));
    expect(hex(await client.read(11))).toBe("0003000000050101020000");
  });

  it("oversized: 300 registers for a request of 10, MBAP length set to fit", async () => {
    await start();
    sim.faults.malformed("oversized", { functionCode: 3 });
    client.send(mbap(1, 1, pdu(3, 0, 10)));
    const header = await client.read(7);
    expect(hex(header)).toBe("00010000025b01");
    const body = await client.read(603 - 1);
    expect(body[0]).toBe(3);
    expect(body[1]).toBe(600 & 0xff);
    expect(hex(body.subarray(2, 8))).toBe("1234abcd5678");
    await settle();
    expect(client.pending().length).toBe(0);
  });

  it("stall-mid-frame: half a response, then nothing, with the socket kept open", async () => {
    await start();
    sim.faults.malformed("stall-mid-frame", { address: 0 });
    client.send(mbap(1, 1, pdu(3, 0, 2)));
    expect(hex(await client.read(6))).toBe("000100000007");
    client.send(mbap(2, 1, pdu(3, 2, 1)));
    await until(() => sim.requests.length === 2, "the second request");
    await settle();
    expect(client.pending().length).toBe(0);
    expect(client.socket.destroyed).toBe(false);
    expect(client.socket.readyState).toBe("open");
  });

  it("garbage: random bytes that can never pass as a response, the same for a seed", async () => {
    const seen: string[] = [];
    for (const _ of [0, 1]) {
      await start(42);
      sim.faults.malformed("garbage");
      client.send(mbap(1, 1, pdu(3, 0, 1)));
      const head = await client.read(8);
      await settle();
      const bytes = Buffer.concat([head, client.pending()]);
      expect(bytes.length).toBeLessThan(40);
      expect(bytes.readUInt16BE(2)).not.toBe(0); // protocol id: never a valid MBAP response
      seen.push(hex(bytes));
      client.close();
      await sim.close();
    }
    await start(43);
    sim.faults.malformed("garbage");
    client.send(mbap(1, 1, pdu(3, 0, 1)));
    const other = await client.read(8);
    expect(seen[0]).toBe(seen[1]);
    expect(hex(other)).not.toBe(seen[0]?.slice(0, 16));
  });
});

describe("reply shapes: duplicated, torn and unsolicited replies", () => {
  it("duplicate(0) sends the reply twice back to back", async () => {
    await start(1, "rtu-over-tcp");
    sim.faults.duplicate(0, { address: 0 });
    client.send(rtu(1, pdu(3, 0, 1)));
    const reply = hex(rtu(1, [3, 2, 0x12, 0x34]));
    expect(hex(await client.read(14))).toBe(reply + reply);
    await settle();
    expect(client.pending().length).toBe(0);
  });

  /** Reads HR0 under a duplicate fault: the reply comes, the register changes, no copy yet. */
  async function firstOfTwo(afterMs: number | "held"): Promise<string> {
    await start(1, "rtu-over-tcp");
    sim.faults.duplicate(afterMs, { address: 0 });
    client.send(rtu(1, pdu(3, 0, 1)));
    const reply = hex(rtu(1, [3, 2, 0x12, 0x34]));
    expect(hex(await client.read(7))).toBe(reply);
    sim.setRegisters(1, "HR0", [0x9999]);
    await settle(50);
    expect(client.pending().length).toBe(0);
    return reply;
  }

  it("duplicate(ms) sends a second copy that much later, with the values at request time", async () => {
    const reply = await firstOfTwo(600);
    expect(hex(await client.read(7))).toBe(reply);
  });

  it('duplicate("held") sends the copy on releaseHeld() only, with the values at request time', async () => {
    const reply = await firstOfTwo("held");
    expect(sim.releaseHeld()).toBe(1);
    expect(hex(await client.read(7))).toBe(reply);
    expect(sim.releaseHeld()).toBe(0);
  });

  it("duplicate also repeats an MBAP reply under the same transaction id", async () => {
    await start();
    sim.faults.duplicate(0);
    client.send(mbap(7, 1, pdu(3, 0, 1)));
    expect(hex(await client.read(22))).toBe("0007000000050103021234".repeat(2));
  });

  it("torn(ms) sends the first half of the frame, then the rest after the pause", async () => {
    await start(1, "rtu-over-tcp");
    sim.faults.torn(600, { address: 0 });
    client.send(rtu(1, pdu(3, 0, 2)));
    const reply = rtu(1, [3, 4, 0x12, 0x34, 0xab, 0xcd]);
    expect(hex(await client.read(4))).toBe(hex(reply.subarray(0, 4)));
    await settle(50);
    expect(client.pending().length).toBe(0);
    expect(hex(await client.read(5))).toBe(hex(reply.subarray(4)));
  });

  it("torn and duplicate combine with delay: late, in pieces, then copied", async () => {
    await start(1, "rtu-over-tcp");
    sim.faults.delay(50);
    sim.faults.torn(30);
    sim.faults.duplicate(0);
    const sent = Date.now();
    client.send(rtu(1, pdu(3, 0, 1)));
    const reply = hex(rtu(1, [3, 2, 0x12, 0x34]));
    expect(hex(await client.read(14))).toBe(reply + reply);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(70);
  });

  it("inject sends a well-formed reply nobody asked for, in each link's framing", async () => {
    await start(1, "rtu-over-tcp");
    expect(sim.inject({ unitId: 1, functionCode: 3, values: [0x0102] })).toBe(1);
    expect(hex(await client.read(7))).toBe(hex(rtu(1, [3, 2, 1, 2])));
    expect(sim.inject({ unitId: 2, functionCode: 1, values: [1, 0, 1] })).toBe(1);
    expect(hex(await client.read(6))).toBe(hex(rtu(2, [1, 1, 0b101])));
    expect(sim.requests).toHaveLength(0);
    client.close();
    await sim.close();
    await start();
    sim.inject({ unitId: 1, functionCode: 4, values: [7], transactionId: 9 });
    expect(hex(await client.read(11))).toBe("0009000000050104020007");
  });

  it("records the MBAP transaction id of each request (none over RTU)", async () => {
    await start();
    client.send(mbap(300, 1, pdu(3, 0, 1)));
    await client.read(11);
    expect(sim.requests.at(-1)?.transactionId).toBe(300);
    client.close();
    await sim.close();
    await start(1, "rtu-over-tcp");
    client.send(rtu(1, pdu(3, 0, 1)));
    await client.read(7);
    expect(sim.requests.at(-1)).not.toHaveProperty("transactionId");
  });

  it("rejects a negative pause or copy delay", async () => {
    await start();
    expect(() => sim.faults.torn(-1)).toThrow(RangeError);
    expect(() => sim.faults.duplicate(Number.NaN)).toThrow(RangeError);
  });
});
