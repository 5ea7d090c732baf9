/**
 * One connection to a Modbus TCP device, an RTU bus behind a serial-to-Ethernet converter, or
 * an RTU serial line. The only file that imports modbus-serial; its types do not leave here.
 *
 * Invariants:
 * - Every request has its own timeout (modbus-serial's own timeout is left off) and settles
 *   exactly once: with the words or bits asked for, or a GatewayError whose code says why
 *   (MODBUS_TIMEOUT, MODBUS_EXCEPTION, MODBUS_MALFORMED, MODBUS_DISCONNECTED).
 * - A response is only accepted when it carries exactly the quantity asked for.
 * - After a malformed response on a TCP stream, or a timeout that leaves a partial frame in the
 *   receive buffer (a device that stalled mid-frame), the byte stream cannot be trusted: the link
 *   closes itself, and the runner reconnects.
 * - modbus-serial's "error" events are always listened to: an unhandled one would end the process.
 */
import modbusSerial from "modbus-serial";
import type { ModbusTable } from "../../config/modbus-address.ts";
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";
import { withTimeout } from "../../lib/abort.ts";
import { GatewayError } from "../../lib/errors.ts";

// modbus-serial is CommonJS whose typings claim an ES default export: take the class off the
// module object, as Node hands it to ESM.
const ModbusRTU = modbusSerial.default;
type Client = InstanceType<typeof ModbusRTU>;
type Callback<T> = (err: (Error & { modbusCode?: number }) | null, res?: { data: T }) => void;

/** Modbus exception codes (Modbus Application Protocol V1.1b3, section 7). */
const EXCEPTION_NAMES: Record<number, string> = {
  1: "illegal function",
  2: "illegal data address",
  3: "illegal data value",
  4: "server device failure",
  5: "acknowledge",
  6: "server device busy",
  8: "memory parity error",
  10: "gateway path unavailable",
  11: "gateway target device failed to respond",
};

const FUNCTION_OF: Record<ModbusTable, 1 | 2 | 3 | 4> = {
  coil: 1,
  discrete_input: 2,
  holding_register: 3,
  input_register: 4,
};

const TABLE_WORD: Record<ModbusTable, string> = {
  coil: "coils",
  discrete_input: "discrete inputs",
  holding_register: "holding",
  input_register: "input",
};

export function exceptionName(code: number): string {
  return EXCEPTION_NAMES[code] ?? "unknown exception";
}

export interface ReadRequest {
  unitId: number;
  table: ModbusTable;
  start: number;
  count: number;
}

export interface ModbusLink {
  readonly isOpen: boolean;
  /** Where the link goes, for messages: "10.0.0.5:502" or "/dev/ttyUSB0". */
  readonly peer: string;
  /** Registers as uint16 words, or coils and discrete inputs as 0/1. */
  read(request: ReadRequest, timeoutMs: number, signal?: AbortSignal): Promise<number[]>;
  /** Called once when the link closes, whoever closed it. */
  onClose(listener: (reason: string) => void): void;
  close(): Promise<void>;
}

export function describeRequest(request: ReadRequest, peer: string): string {
  return `read ${TABLE_WORD[request.table]} ${request.start}+${request.count} on unit ${request.unitId} at ${peer}`;
}

/** Opens a link; throws MODBUS_CONNECT with the cause when the device cannot be reached. */
export async function openLink(
  device: ModbusDeviceConfig,
  signal?: AbortSignal,
): Promise<ModbusLink> {
  const client = new ModbusRTU();
  // An unhandled "error" event would end the process; the link reports errors per request.
  client.on("error", () => {});
  const peer =
    device.protocol === "modbus-rtu" ? device.serial.path : `${device.host}:${device.port}`;
  const timeout = device.protocol === "modbus-rtu" ? 5000 : device.connect_timeout;
  const opening = connectClient(client, device);
  try {
    await withTimeout(
      opening,
      timeout,
      () => new GatewayError("MODBUS_CONNECT", `connect to ${peer} timed out after ${timeout} ms`),
      signal,
    );
  } catch (err) {
    if (device.protocol === "modbus-rtu") {
      // An abort may come before the serial port finishes opening: wait for the open to
      // settle, then close, so that the tty lock is free when this returns.
      const settled = opening.then(
        () => shutClient(client),
        () => {},
      );
      await withTimeout(settled, 2000, () => new Error("serial open did not settle")).catch(
        () => {},
      );
    } else {
      opening.catch(() => {});
      await shutClient(client);
    }
    if (err instanceof GatewayError) throw err;
    throw new GatewayError("MODBUS_CONNECT", `connect to ${peer} failed`, { cause: err });
  }
  return new SerialLink(client, peer, device.protocol === "modbus-tcp");
}

function connectClient(client: Client, device: ModbusDeviceConfig): Promise<void> {
  switch (device.protocol) {
    case "modbus-tcp":
      return client.connectTCP(device.host, { port: device.port });
    case "modbus-rtu-over-tcp":
      // modbus-serial's "telnet" port is raw RTU frames over TCP; its TcpRTUBuffered port frames
      // requests as MBAP, which converters do not understand.
      return client.connectTelnet(device.host, { port: device.port });
    case "modbus-rtu":
      return client.connectRTUBuffered(device.serial.path, {
        baudRate: device.serial.baud_rate,
        parity: device.serial.parity,
        dataBits: device.serial.data_bits,
        stopBits: device.serial.stop_bits,
      });
  }
}

/**
 * Ends the connection. TCP sockets are destroyed at once; modbus-serial's serial port has no
 * destroy(), so it is closed and awaited: its lock on the tty is released only then.
 */
async function shutClient(client: Client): Promise<void> {
  const port = (client as unknown as { _port?: { destroy?: unknown } })._port;
  if (!port) return;
  if (typeof port.destroy === "function") {
    try {
      client.destroy(() => {});
    } catch {
      // already gone
    }
    return;
  }
  if (!client.isOpen) return;
  await new Promise<void>((resolve) => {
    try {
      client.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

class SerialLink implements ModbusLink {
  readonly peer: string;
  private readonly client: Client;
  private readonly mbap: boolean;
  private closed = false;
  private closeReason = "closed";
  private readonly closeListeners: ((reason: string) => void)[] = [];

  constructor(client: Client, peer: string, mbap: boolean) {
    this.client = client;
    this.peer = peer;
    this.mbap = mbap;
    client.on("close", () => this.markClosed("connection closed by the device"));
    if (mbap) setNoDelay(client);
  }

  get isOpen(): boolean {
    return !this.closed && this.client.isOpen;
  }

  onClose(listener: (reason: string) => void): void {
    if (this.closed) listener(this.closeReason);
    else this.closeListeners.push(listener);
  }

  async read(request: ReadRequest, timeoutMs: number, signal?: AbortSignal): Promise<number[]> {
    const what = describeRequest(request, this.peer);
    if (!this.isOpen) {
      throw new GatewayError("MODBUS_DISCONNECTED", `${what} failed: ${this.closeReason}`);
    }
    const pending = this.send(request);
    try {
      const data = await withTimeout(
        pending,
        timeoutMs,
        () =>
          new GatewayError("MODBUS_TIMEOUT", `${what} failed: no response within ${timeoutMs} ms`),
        signal,
      );
      return this.checked(data, request, what);
    } catch (err) {
      pending.catch(() => {});
      throw this.classify(err, what);
    }
  }

  private send(request: ReadRequest): Promise<(number | boolean)[]> {
    const { unitId, start, count } = request;
    return new Promise((resolve, reject) => {
      const done: Callback<(number | boolean)[]> = (err, res) => {
        if (err) reject(err);
        else resolve(res?.data ?? []);
      };
      switch (FUNCTION_OF[request.table]) {
        case 1:
          this.client.writeFC1(unitId, start, count, done as never);
          break;
        case 2:
          this.client.writeFC2(unitId, start, count, done as never);
          break;
        case 3:
          this.client.writeFC3(unitId, start, count, done as never);
          break;
        case 4:
          this.client.writeFC4(unitId, start, count, done as never);
          break;
      }
    });
  }

  /** Bit reads come back padded to whole bytes: keep the quantity asked for. */
  private checked(data: (number | boolean)[], request: ReadRequest, what: string): number[] {
    const bits = request.table === "coil" || request.table === "discrete_input";
    const expected = bits ? Math.ceil(request.count / 8) * 8 : request.count;
    if (data.length !== expected) {
      this.resync();
      throw new GatewayError(
        "MODBUS_MALFORMED",
        `${what} failed: response carries ${data.length} ${bits ? "bits" : "registers"}, expected ${expected}`,
      );
    }
    const values = bits ? data.slice(0, request.count).map((b) => (b ? 1 : 0)) : (data as number[]);
    return values;
  }

  private classify(err: unknown, what: string): GatewayError {
    if (err instanceof GatewayError) {
      if (err.code === "MODBUS_TIMEOUT" && this.hasPartialFrame()) this.resync();
      return err;
    }
    const e = err as Error & { modbusCode?: number; name?: string };
    if (typeof e.modbusCode === "number") {
      return new GatewayError(
        "MODBUS_EXCEPTION",
        `${what} failed: exception ${e.modbusCode} (${exceptionName(e.modbusCode)})`,
        { cause: err, details: { exceptionCode: e.modbusCode } },
      );
    }
    if (e.name === "PortNotOpenError" || !this.isOpen) {
      return new GatewayError("MODBUS_DISCONNECTED", `${what} failed: ${this.closeReason}`, {
        cause: err,
      });
    }
    this.resync();
    return new GatewayError("MODBUS_MALFORMED", `${what} failed: ${e.message}`, { cause: err });
  }

  /** Whether bytes of an unfinished MBAP frame wait in modbus-serial's receive buffer. */
  private hasPartialFrame(): boolean {
    if (!this.mbap) return false;
    // Workaround: modbus-serial's TcpPort keeps a half-received frame in _clientRcvData forever,
    // gluing it to the next response (seen with a device that stalls mid-frame).
    const port = (this.client as unknown as { _port?: { _clientRcvData?: Buffer } })._port;
    return (port?._clientRcvData?.length ?? 0) > 0;
  }

  /** On a TCP stream a bad frame means lost framing: drop the connection to start clean. */
  private resync(): void {
    if (!this.mbap) return;
    this.markClosed("connection reset after a malformed response");
    void shutClient(this.client);
  }

  private markClosed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }

  async close(): Promise<void> {
    this.markClosed("closed by the gateway");
    await shutClient(this.client);
  }
}

function setNoDelay(client: Client): void {
  const socket = (
    client as unknown as { _port?: { _client?: { setNoDelay?: (v: boolean) => void } } }
  )._port?._client;
  socket?.setNoDelay?.(true);
}
