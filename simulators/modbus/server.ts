/**
 * The Modbus PLC simulator: TCP (MBAP or RTU-over-TCP framing) and/or a serial port, one
 * shared memory, faults, request log and optional scenario. Starting binds the socket (port 0
 * = a free port), opens the serial port and applies the scenario's initial values; close()
 * undoes all of it (sockets, timers, serial) and is idempotent. Every request on any
 * transport is recorded before it is answered.
 */
import { createServer, type Server, type Socket } from "node:net";
import { isRegisterTable, type ModbusAddress } from "../../src/config/modbus-address.ts";
import { encodeRegisters } from "../../src/drivers/modbus/codec.ts";
import { Faults } from "./faults.ts";
import { Link, type LinkContext } from "./link.ts";
import { checkUnit, Memory, parseAddress, type WordTable } from "./memory.ts";
import { RegisterMap } from "./register-map.ts";
import { createRng } from "./rng.ts";
import { ScenarioRun, type ScenarioSink } from "./scenario.ts";
import { loadScenario } from "./scenario-file.ts";
import { openSerialServer, type SerialServer } from "./serial.ts";
import type {
  CodecSpec,
  ModbusSimulator,
  ModbusSimulatorOptions,
  RequestRecord,
  TagValue,
} from "./types.ts";

/** Frozen values are keyed by unit, table and register (a register bit freezes its register). */
const frozenKey = (unit: number, table: string, offset: number) => `${unit}/${table}/${offset}`;

export async function startModbusSimulator(
  options: ModbusSimulatorOptions = {},
): Promise<ModbusSimulator> {
  const units = options.units === undefined ? undefined : new Set(options.units);
  for (const unit of units ?? []) checkUnit(unit);
  const memory = new Memory();
  const faults = new Faults(createRng((options.seed ?? 1) ^ 0xfa175));
  const requests: RequestRecord[] = [];
  const frozen = new Set<string>();
  const map = new RegisterMap(options);
  const ctx: LinkContext = {
    memory,
    map,
    faults,
    record: options.recordRequests === false ? () => {} : (request) => requests.push(request),
    answers: (unit) => units === undefined || units.has(unit),
    rng: createRng((options.seed ?? 1) ^ 0x5eed),
  };

  const sink: ScenarioSink = {
    writeWords(unit, table, offset, words) {
      for (let i = 0; i < words.length; i++) {
        if (frozen.has(frozenKey(unit, table, offset + i))) return;
      }
      memory.write(unit)[table].set(words, offset);
    },
    writeBit(unit, at, value) {
      if (frozen.has(frozenKey(unit, at.table, at.offset))) return;
      writeBit(memory, unit, at, value);
    },
  };
  const scenarioDef =
    options.scenario === undefined ? undefined : await loadScenario(options.scenario);
  const scenario =
    scenarioDef === undefined ? undefined : new ScenarioRun(scenarioDef, options.seed ?? 1, sink);

  const serveTcp = options.serialPath === undefined || options.port !== undefined;
  const sockets = new Map<Socket, Link>();
  let accepted = 0;
  let server: Server | undefined;
  let serial: SerialServer | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;

  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (ticker !== undefined) clearInterval(ticker);
      const closed =
        server === undefined
          ? Promise.resolve()
          : new Promise<void>((resolve) => server?.close(() => resolve()));
      for (const [socket, link] of sockets) {
        link.close();
        socket.destroy();
      }
      sockets.clear();
      await Promise.all([closed, serial?.close()]);
    })();
    return closing;
  };

  try {
    if (serveTcp) {
      const transport = options.framing === "rtu-over-tcp" ? "rtu-over-tcp" : "tcp";
      server = createServer({ noDelay: true }, (socket) => {
        accepted += 1;
        if (closing !== undefined) {
          socket.destroy();
          return;
        }
        socket.setNoDelay(true);
        const link = new Link(ctx, transport, {
          write: (bytes) => socket.write(bytes),
          destroy: () => socket.destroy(),
          cork: () => socket.cork(),
          uncork: () => socket.uncork(),
        });
        sockets.set(socket, link);
        socket.on("data", (chunk: Buffer) => link.receive(chunk));
        socket.on("error", () => {});
        socket.on("close", () => {
          link.close();
          sockets.delete(socket);
        });
      });
      await listen(server, options.host ?? "127.0.0.1", options.port ?? 0);
    }
    if (options.serialPath !== undefined) {
      serial = await openSerialServer(ctx, options.serialPath, options.serialBaudRate ?? 19_200);
    }
  } catch (err) {
    await close();
    throw err;
  }
  if (scenario !== undefined && options.tickMs !== undefined && options.tickMs > 0) {
    const tickMs = options.tickMs;
    ticker = setInterval(() => scenario.advance(tickMs), tickMs);
  }
  const address = server?.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;

  return {
    port,
    get connections() {
      return accepted;
    },
    requests,
    clearRequests: () => {
      requests.length = 0;
    },
    setRegisters: (unit, at, words) => memory.setRegisters(unit, at, words),
    getRegisters: (unit, at, count) => memory.getRegisters(unit, at, count),
    setBit: (unit, at, value) => memory.setBit(unit, at, value),
    getBit: (unit, at) => memory.getBit(unit, at),
    setValue: (unit, at, value, spec) => setValue(memory, unit, at, value, spec),
    freeze(unit, at) {
      checkUnit(unit);
      const parsed = parseAddress(at);
      frozen.add(frozenKey(unit, parsed.table, parsed.offset));
    },
    advance: (ms) => scenario?.advance(ms),
    faults,
    inject(reply) {
      let sent = 0;
      for (const link of [...sockets.values(), ...(serial ? [serial.link] : [])]) {
        if (link.inject(reply)) sent += 1;
      }
      return sent;
    },
    releaseHeld() {
      let sent = 0;
      for (const link of [...sockets.values(), ...(serial ? [serial.link] : [])]) {
        sent += link.releaseHeld();
      }
      return sent;
    },
    dropConnections() {
      for (const [socket, link] of sockets) {
        link.close();
        socket.destroy();
      }
      sockets.clear();
    },
    close,
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) =>
      reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

function writeBit(memory: Memory, unit: number, at: ModbusAddress, value: boolean): void {
  const tables = memory.write(unit);
  if (at.table === "coil" || at.table === "discrete_input") {
    tables[at.table][at.offset] = value ? 1 : 0;
    return;
  }
  const mask = 1 << (at.bit ?? 0);
  const words = tables[at.table];
  words[at.offset] = value ? words[at.offset]! | mask : words[at.offset]! & ~mask;
}

function setValue(
  memory: Memory,
  unit: number,
  address: string,
  value: TagValue,
  spec: CodecSpec,
): void {
  checkUnit(unit);
  const at = parseAddress(address);
  if (!isRegisterTable(at.table)) {
    if (typeof value !== "boolean") {
      throw new RangeError(`setValue ${address}: a coil or discrete input holds a boolean`);
    }
    writeBit(memory, unit, at, value);
    return;
  }
  const table = at.table as WordTable;
  const bit = at.bit ?? spec.bit;
  const current = memory.read(unit)[table][at.offset];
  const words = encodeRegisters(value, bit === undefined ? spec : { ...spec, bit }, current);
  if (at.offset + words.length > 65_536) {
    throw new RangeError(`setValue ${address}: ${words.length} registers run past 65535`);
  }
  memory.write(unit)[table].set(words, at.offset);
}
