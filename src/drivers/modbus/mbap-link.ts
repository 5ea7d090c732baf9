/**
 * A Modbus TCP link (MBAP framing) through modbus-serial, the only file that imports it.
 *
 * Invariants:
 * - Every request has its own timeout (modbus-serial's own timeout is left off) and settles
 *   exactly once: with the words or bits asked for, or a GatewayError whose code says why
 *   (MODBUS_TIMEOUT, MODBUS_EXCEPTION, MODBUS_MALFORMED, MODBUS_DISCONNECTED).
 * - A response is only accepted when it carries exactly the quantity asked for, under the
 *   transaction id of the request (modbus-serial also checks unit, function and length).
 * - Transaction ids run 1..65535 on a connection (modbus-serial's own wrap at 256 would hand
 *   the id of a reply still on its way to a new request), and an id whose request timed out or
 *   was aborted is not used again until its late reply has come in: the late reply then finds
 *   no request to answer and is dropped. When too many such ids are out, the link closes.
 * - A transaction is forgotten once it settles, so a second copy of a reply is dropped.
 * - After a malformed response, or a timeout that leaves a partial frame in the receive buffer
 *   (a device that stalled mid-frame), the byte stream cannot be trusted: the link closes
 *   itself, and the runner reconnects.
 * - modbus-serial's "error" events are always listened to: an unhandled one would end the process.
 */
import modbusSerial from "modbus-serial";
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";
import { withTimeout } from "../../lib/abort.ts";
import { GatewayError, isGatewayError } from "../../lib/errors.ts";
import {
  describeRequest,
  exceptionName,
  FUNCTION_OF,
  isBitRequest,
  type ModbusLink,
  type ReadRequest,
} from "./request.ts";

// modbus-serial is CommonJS whose typings claim an ES default export: take the class off the
// module object, as Node hands it to ESM.
const ModbusRTU = modbusSerial.default;
type Client = InstanceType<typeof ModbusRTU>;
type Callback<T> = (err: (Error & { modbusCode?: number }) | null, res?: { data: T }) => void;

/** Ids whose reply is still owed before the link starts afresh. */
const MAX_ABANDONED = 1024;
const MAX_TRANSACTION_ID = 0xffff;

/**
 * Workaround, the one place that reaches into modbus-serial 8.0.25 (pinned): its TcpPort takes
 * the transaction id of the next request from `_port._transactionIdWrite` and wraps it at 256;
 * the client keeps each request in `_transactions[id]` for ever; TcpPort keeps a half-received
 * frame in `_clientRcvData`. test/drivers/modbus-transaction-id.test.ts fails if an upgrade
 * changes any of this.
 */
interface Internals {
  port: { _transactionIdWrite: number; _clientRcvData?: Buffer };
  transactions: Record<number, { next?: (...args: unknown[]) => void } | undefined>;
}

function internals(client: Client): Internals {
  const c = client as unknown as {
    _port?: Internals["port"];
    _transactions?: Internals["transactions"];
  };
  if (typeof c._port?._transactionIdWrite !== "number" || typeof c._transactions !== "object") {
    throw new Error("modbus-serial internals changed: _port._transactionIdWrite, _transactions");
  }
  return { port: c._port, transactions: c._transactions };
}

/** Opens a Modbus TCP link; throws MODBUS_CONNECT with the cause. */
export async function openMbapLink(
  device: Extract<ModbusDeviceConfig, { protocol: "modbus-tcp" }>,
  signal?: AbortSignal,
): Promise<ModbusLink> {
  const client = new ModbusRTU();
  // An unhandled "error" event would end the process; the link reports errors per request.
  client.on("error", () => {});
  const peer = `${device.host}:${device.port}`;
  const timeout = device.connect_timeout;
  const opening = client.connectTCP(device.host, { port: device.port });
  try {
    await withTimeout(
      opening,
      timeout,
      () => new GatewayError("MODBUS_CONNECT", `connect to ${peer} timed out after ${timeout} ms`),
      signal,
    );
    return new MbapLink(client, peer, internals(client));
  } catch (err) {
    opening.catch(() => {});
    shutClient(client);
    if (err instanceof GatewayError) throw err;
    throw new GatewayError("MODBUS_CONNECT", `connect to ${peer} failed`, { cause: err });
  }
}

/** Destroys the TCP socket at once. */
function shutClient(client: Client): void {
  try {
    client.destroy(() => {});
  } catch {
    // already gone
  }
}

class MbapLink implements ModbusLink {
  readonly peer: string;
  private readonly client: Client;
  private readonly internals: Internals;
  private nextId = 1;
  /** Ids of requests given up on whose reply has not come. */
  private readonly abandoned = new Set<number>();
  private closed = false;
  private closeReason = "closed";
  private readonly closeListeners: ((reason: string) => void)[] = [];

  constructor(client: Client, peer: string, inner: Internals) {
    this.client = client;
    this.peer = peer;
    this.internals = inner;
    client.on("close", () => this.markClosed("connection closed by the device"));
    setNoDelay(client);
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
    const id = this.takeId();
    const pending = this.send(request);
    try {
      const data = await withTimeout(
        pending,
        timeoutMs,
        () =>
          new GatewayError("MODBUS_TIMEOUT", `${what} failed: no response within ${timeoutMs} ms`),
        signal,
      );
      delete this.internals.transactions[id];
      return this.checked(data, request, what);
    } catch (err) {
      pending.catch(() => {});
      if (isGatewayError(err, "MODBUS_TIMEOUT") || isGatewayError(err, "ABORTED")) {
        this.abandon(id);
      } else {
        delete this.internals.transactions[id];
      }
      throw this.classify(err, what);
    }
  }

  /** The id of the next request: the next one whose earlier use is not still owed a reply. */
  private takeId(): number {
    let id = this.nextId;
    while (this.abandoned.has(id)) id = (id % MAX_TRANSACTION_ID) + 1;
    this.nextId = (id % MAX_TRANSACTION_ID) + 1;
    this.internals.port._transactionIdWrite = id;
    return id;
  }

  /** A late reply to `id` will find a sink that frees the id, instead of a waiting request. */
  private abandon(id: number): void {
    const transaction = this.internals.transactions[id];
    if (transaction === undefined) return;
    this.abandoned.add(id);
    transaction.next = () => {
      delete this.internals.transactions[id];
      this.abandoned.delete(id);
    };
    if (this.abandoned.size > MAX_ABANDONED) {
      this.resync(`${this.abandoned.size} replies overdue: connection reset`);
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
    const bits = isBitRequest(request);
    const expected = bits ? Math.ceil(request.count / 8) * 8 : request.count;
    if (data.length !== expected) {
      this.resync("connection reset after a malformed response");
      throw new GatewayError(
        "MODBUS_MALFORMED",
        `${what} failed: response carries ${data.length} ${bits ? "bits" : "registers"}, expected ${expected}`,
      );
    }
    return bits ? data.slice(0, request.count).map((b) => (b ? 1 : 0)) : (data as number[]);
  }

  private classify(err: unknown, what: string): GatewayError {
    if (err instanceof GatewayError) {
      if (err.code === "MODBUS_TIMEOUT" && this.hasPartialFrame()) {
        this.resync("connection reset after a malformed response");
      }
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
    this.resync("connection reset after a malformed response");
    return new GatewayError("MODBUS_MALFORMED", `${what} failed: ${e.message}`, { cause: err });
  }

  /** Whether bytes of an unfinished MBAP frame wait in modbus-serial's receive buffer. */
  private hasPartialFrame(): boolean {
    // modbus-serial's TcpPort keeps a half-received frame in _clientRcvData forever, gluing it
    // to the next response (seen with a device that stalls mid-frame).
    return (this.internals.port._clientRcvData?.length ?? 0) > 0;
  }

  /** On a TCP stream a bad frame means lost framing: drop the connection to start clean. */
  private resync(reason: string): void {
    this.markClosed(reason);
    shutClient(this.client);
  }

  private markClosed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }

  async close(): Promise<void> {
    this.markClosed("closed by the gateway");
    shutClient(this.client);
  }
}

function setNoDelay(client: Client): void {
  const socket = (
    client as unknown as { _port?: { _client?: { setNoDelay?: (v: boolean) => void } } }
  )._port?._client;
  socket?.setNoDelay?.(true);
}
