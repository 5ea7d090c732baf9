/**
 * The byte streams Modbus frames travel on: a TCP connection (Modbus TCP, or RTU frames to a
 * serial-to-Ethernet converter), or a serial port. The gateway owns these bytes itself
 * (mbap-link.ts and line-guard.ts decide what they mean). modbus-serial's ports are not used:
 * its RTU ports search their buffer from any offset for a frame that looks like the reply,
 * which turns a late or duplicated reply into the answer to the next request (issue 8), and
 * its TCP port silently drops a reply whose transaction id no request has, so a device that
 * does not echo ids just goes dark (issue 11).
 *
 * Invariants:
 * - open throws MODBUS_CONNECT with the cause, and leaves nothing open when it throws or is
 *   aborted: a serial port whose open was still running is closed once the open settles, so
 *   that the tty lock is free when openByteStream returns.
 * - close() is idempotent and resolves once the socket is destroyed or the port closed.
 * - "error" events are always listened to: an unhandled one would end the process.
 */
import { connect, type Socket } from "node:net";
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";
import { withTimeout } from "../../lib/abort.ts";
import { GatewayError } from "../../lib/errors.ts";

export interface ByteStream {
  readonly isOpen: boolean;
  readonly peer: string;
  write(bytes: Buffer): void;
  onData(listener: (chunk: Buffer) => void): void;
  /** Called once when the stream ends, whoever ended it. */
  onClose(listener: () => void): void;
  close(): Promise<void>;
}

/** How long a serial port may take to open. */
const SERIAL_OPEN_MS = 5000;

type TcpDevice = Exclude<ModbusDeviceConfig, { protocol: "modbus-rtu" }>;

export async function openByteStream(
  device: ModbusDeviceConfig,
  signal?: AbortSignal,
): Promise<ByteStream> {
  const peer =
    device.protocol === "modbus-rtu" ? device.serial.path : `${device.host}:${device.port}`;
  const timeout = device.protocol === "modbus-rtu" ? SERIAL_OPEN_MS : device.connect_timeout;
  const opening =
    device.protocol === "modbus-rtu" ? openSerial(device, peer) : openTcp(device, peer);
  try {
    return await withTimeout(
      opening,
      timeout,
      () => new GatewayError("MODBUS_CONNECT", `connect to ${peer} timed out after ${timeout} ms`),
      signal,
    );
  } catch (err) {
    // whatever the open still does, close it once it settles
    const settled = opening.then(
      (stream) => stream.close(),
      () => {},
    );
    await withTimeout(settled, 2000, () => new Error("open did not settle")).catch(() => {});
    if (err instanceof GatewayError) throw err;
    throw new GatewayError("MODBUS_CONNECT", `connect to ${peer} failed`, { cause: err });
  }
}

function openTcp(device: TcpDevice, peer: string): Promise<ByteStream> {
  const socket = connect({ host: device.host, port: device.port, noDelay: true });
  socket.on("error", () => {});
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(tcpStream(socket, peer));
    });
  });
}

function tcpStream(socket: Socket, peer: string): ByteStream {
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return {
    peer,
    get isOpen() {
      return !socket.destroyed && socket.readyState === "open";
    },
    write: (bytes) => {
      socket.write(bytes);
    },
    onData: (listener) => socket.on("data", listener),
    onClose: (listener) => {
      void closed.then(listener);
    },
    close: async () => {
      socket.destroy();
      await closed;
    },
  };
}

async function openSerial(
  device: Extract<ModbusDeviceConfig, { protocol: "modbus-rtu" }>,
  peer: string,
): Promise<ByteStream> {
  const { SerialPort } = await import("serialport");
  const { serial } = device;
  const port = new SerialPort({
    path: serial.path,
    baudRate: serial.baud_rate,
    parity: serial.parity,
    dataBits: serial.data_bits,
    stopBits: serial.stop_bits,
    autoOpen: false,
  });
  port.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    port.open((err) => (err ? reject(err) : resolve()));
  });
  const closed = new Promise<void>((resolve) => port.once("close", () => resolve()));
  return {
    peer,
    get isOpen() {
      return port.isOpen;
    },
    write: (bytes) => {
      port.write(bytes);
    },
    onData: (listener) => port.on("data", listener),
    onClose: (listener) => {
      void closed.then(listener);
    },
    close: async () => {
      if (port.isOpen) {
        await new Promise<void>((resolve) => port.close(() => resolve()));
      }
      await withTimeout(closed, 2000, () => new Error("serial close")).catch(() => {});
    },
  };
}
