/**
 * Test helpers for the Modbus simulator: a raw TCP client that collects every byte it
 * receives, request builders written independently of the simulator's own framing code, a
 * promise-based runner for external clients (mbpoll, pymodbus) and a socat pty pair.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

export const run = promisify(execFile);

/** CRC-16/MODBUS, bit by bit (deliberately not the simulator's table version). */
export function crc(bytes: readonly number[]): number {
  let value = 0xffff;
  for (const byte of bytes) {
    value ^= byte;
    for (let i = 0; i < 8; i++) value = value & 1 ? (value >> 1) ^ 0xa001 : value >> 1;
  }
  return value;
}

export function mbap(tid: number, unit: number, pdu: readonly number[]): Buffer {
  const length = pdu.length + 1;
  return Buffer.from([tid >> 8, tid & 0xff, 0, 0, length >> 8, length & 0xff, unit, ...pdu]);
}

export function rtu(unit: number, pdu: readonly number[]): Buffer {
  const body = [unit, ...pdu];
  const value = crc(body);
  return Buffer.from([...body, value & 0xff, value >> 8]);
}

/** A PDU: function code then 16-bit big-endian fields. */
export function pdu(fc: number, ...words: number[]): number[] {
  return [fc, ...words.flatMap((w) => [w >> 8, w & 0xff])];
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

export interface RawClient {
  socket: Socket;
  send(bytes: Buffer): void;
  /** Resolves with the next `count` bytes, waiting up to 5 s for them. */
  read(count: number): Promise<Buffer>;
  /** Bytes received and not yet read. */
  pending(): Buffer;
  /** Resolves when the server closed the connection. */
  closed: Promise<void>;
  close(): void;
}

export async function rawClient(port: number): Promise<RawClient> {
  const socket = connect({ host: "127.0.0.1", port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  let buffer = Buffer.alloc(0);
  let waiter: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    waiter?.();
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return {
    socket,
    send: (bytes) => socket.write(bytes),
    pending: () => buffer,
    closed,
    close: () => socket.destroy(),
    async read(count) {
      const deadline = setTimeout(() => waiter?.(), 5000);
      const started = Date.now();
      try {
        while (buffer.length < count) {
          if (Date.now() - started >= 5000) {
            throw new Error(`expected ${count} bytes, got ${buffer.length}: ${hex(buffer)}`);
          }
          await new Promise<void>((resolve) => {
            waiter = resolve;
          });
        }
      } finally {
        clearTimeout(deadline);
        waiter = undefined;
      }
      const out = buffer.subarray(0, count);
      buffer = buffer.subarray(count);
      return out;
    },
  };
}

/** Waits until `check` holds, polling every 5 ms, for at most 5 s. */
export async function until(check: () => boolean, what: string): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > 5000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Gives the loopback a moment to deliver anything still in flight (for "nothing came"). */
export function settle(ms = 50): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface PtyPair {
  /** The simulator's end. */
  a: string;
  /** The client's end. */
  b: string;
  close(): Promise<void>;
}

export async function ptyPair(): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-pty-"));
  const a = join(dir, "a");
  const b = join(dir, "b");
  const socat = spawn("socat", [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
    stdio: "ignore",
  });
  const exited = new Promise<void>((resolve) => socat.once("exit", () => resolve()));
  await until(() => existsSync(a) && existsSync(b), "socat's pty links");
  return {
    a,
    b,
    async close() {
      socat.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
