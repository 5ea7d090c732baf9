/**
 * One MQTT connection: one mqtt.js client over one socket, opened once and never reconnected by
 * mqtt.js (`reconnectPeriod: 0`). The publisher opens a new one for every attempt, so nothing of
 * a lost connection (mqtt.js's in-memory outgoing store, packet ids, pending callbacks) carries
 * over: durability lives in the journal only. When the socket closes, every publish still
 * waiting for its PUBACK is rejected and `closed` resolves with the reason.
 *
 * Protocol: MQTT 5, clean start, session expiry 0. Chosen over 3.1.1 because a v5 broker says
 * why: a PUBACK carries a reason code (a v3.1.1 broker acknowledges a publish its ACL drops, so
 * the event would be lost silently), CONNACK and DISCONNECT carry reasons, and the broker's
 * Receive Maximum bounds the in-flight window (mosquitto advertises its max_inflight_messages,
 * 20 by default; the publisher sends at most min(max_in_flight, Receive Maximum)), and its
 * Maximum Packet Size says which events it would refuse (the publisher sets those aside
 * unsent). A DISCONNECT's reason code is kept (`disconnectCode`): 0x95 after a publish names it.
 *
 * Retained messages: with `retain: false` (mqtt.retain, for brokers without them, such as
 * mosquitto's `retain_available false`) nothing goes out retained, the will neither: the flag
 * is dropped here, on the wire, whatever the record or the caller says.
 *
 * A failed connect says what the operator can change (hint()): a certificate not verified
 * (mqtt.ca, the host name), a plain mqtt:// connection closed before any answer (the port may
 * expect TLS: mqtts://), a broker that refuses retained messages (mqtt.retain: false).
 *
 * Sockets are built here, not by mqtt.js, to set TCP_NODELAY (a pipelined QoS 1 stream stalls
 * on Nagle plus delayed ACKs), to pin TLS to verification (`rejectUnauthorized: true`, the
 * configured CA, and the host name or IP SAN checked by Node's checkServerIdentity), and to
 * read into one buffer of the connection's own (`onread`), so that a pause() stops reading at
 * once: the PUBACK filter holds reads while PUBACKs are awaited and nobody waits for them
 * (ack-filter.ts), and the publisher asks for them at once when it waits for room
 * (hurryAcks()).
 *
 * publish() does not go through mqtt.js: its QoS 1 PUBLISH packets are encoded and written in
 * bursts by publish-packet.ts, their plain PUBACKs taken off the socket before mqtt.js parses
 * it (ack-filter.ts), refusals read off mqtt.js's packet stream.
 */
import { readFile } from "node:fs/promises";
import { isIP, connect as netConnect, type Socket, type TcpNetConnectOpts } from "node:net";
import { type ConnectionOptions as TlsConnectionOptions, connect as tlsConnect } from "node:tls";
import { type IClientOptions, MqttClient } from "mqtt";
import { writeToStream } from "mqtt-packet";
import { abortError } from "../lib/abort.ts";
import { GatewayError } from "../lib/errors.ts";
import { IdSlots } from "../lib/id-slots.ts";
import { AckFilter } from "./ack-filter.ts";
import { encodeBurst, FAST_IDS_MAX, type Outgoing, ReservedIdProvider } from "./publish-packet.ts";
import type { MessageProperties, ResponseMessage } from "./types.ts";

/** How send() reports: no error on a successful PUBACK, else the refusal or the loss. */
export type Done = (err?: Error) => void;

export interface Endpoint {
  tls: boolean;
  host: string;
  port: number;
  /** scheme://host:port, without any user info: safe to log. */
  display: string;
}

/** Parses mqtt://host[:1883] or mqtts://host[:8883]; user info in the URL is ignored. */
export function parseBrokerUrl(url: string): Endpoint {
  const parsed = new URL(url);
  const tls = parsed.protocol === "mqtts:";
  if (!tls && parsed.protocol !== "mqtt:")
    throw new GatewayError("MQTT_CONNECT", `broker URL must be mqtt:// or mqtts://, got ${url}`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = parsed.port === "" ? (tls ? 8883 : 1883) : Number(parsed.port);
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return { tls, host, port, display: `${tls ? "mqtts" : "mqtt"}://${shown}:${port}` };
}

export interface ConnectOptions {
  endpoint: Endpoint;
  clientId: string;
  username?: string;
  password?: string;
  /** PEM file paths, read at every attempt (so rotated files are picked up). */
  ca?: string;
  cert?: string;
  key?: string;
  keepaliveMs: number;
  connectTimeoutMs: number;
  /** 5 (default); 4 (3.1.1) for brokers that refuse MQTT 5, such as aedes. */
  protocolVersion?: 4 | 5;
  /** false: nothing is sent retained, the will neither (default true). */
  retain?: boolean;
  /** The last will; a client without one (a replay) leaves nothing behind when it dies. */
  will?: { topic: string; payload: string; retain: boolean };
  onMessage: (topic: string, payload: Buffer, properties: MessageProperties) => void;
  /** How long the PUBACK filter holds a read (ack-filter.ts; tests make it long). */
  ackHoldMs?: number;
}

/** The config's part of ConnectOptions: credentials, TLS files, keep alive and retain. */
export function fromMqttConfig(mqtt: {
  username?: string;
  password?: string;
  ca?: string;
  cert?: string;
  key?: string;
  keepalive: number;
  retain?: boolean;
}): Pick<
  ConnectOptions,
  "username" | "password" | "ca" | "cert" | "key" | "keepaliveMs" | "retain"
> {
  if (mqtt.password !== undefined && mqtt.username === undefined) {
    throw new GatewayError("CONFIG_INVALID", "mqtt.password is set but mqtt.username is not", {
      details: { path: "mqtt.username" },
    });
  }
  return {
    ...(mqtt.username !== undefined ? { username: mqtt.username } : {}),
    ...(mqtt.password !== undefined ? { password: mqtt.password } : {}),
    ...(mqtt.ca !== undefined ? { ca: mqtt.ca } : {}),
    ...(mqtt.cert !== undefined ? { cert: mqtt.cert } : {}),
    ...(mqtt.key !== undefined ? { key: mqtt.key } : {}),
    keepaliveMs: mqtt.keepalive,
    ...(mqtt.retain === false ? { retain: false } : {}),
  };
}

export interface Tls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

async function readTls(opts: ConnectOptions): Promise<Tls> {
  const read = async (what: string, path: string | undefined) => {
    if (path === undefined) return undefined;
    try {
      return await readFile(path);
    } catch (err) {
      throw new GatewayError("MQTT_CONNECT", `cannot read the MQTT ${what} file ${path}`, {
        cause: err,
      });
    }
  };
  return {
    ca: await read("CA", opts.ca),
    cert: await read("client certificate", opts.cert),
    key: await read("client key", opts.key),
  };
}

/** What a socket reads is handed to `receive`, in a buffer it reads into again. */
export function buildSocket(
  endpoint: Endpoint,
  tls: Tls,
  receive: (bytes: Buffer) => void,
): Socket {
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const onread = {
    buffer,
    callback: (length: number) => {
      receive(buffer.subarray(0, length));
      return true;
    },
  };
  const { host, port } = endpoint;
  if (!endpoint.tls) return netConnect({ host, port, noDelay: true, onread });
  // tls.connect takes net.connect's noDelay and onread when it makes its own socket (Node's
  // lib/_tls_wrap.js); @types/node does not list them.
  const options: TlsConnectionOptions & Pick<TcpNetConnectOpts, "noDelay" | "onread"> = {
    host,
    port,
    noDelay: true,
    onread,
    // SNI takes names only; an IP is still verified against the certificate's IP SAN.
    ...(isIP(endpoint.host) === 0 ? { servername: endpoint.host } : {}),
    rejectUnauthorized: true,
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
  };
  return tlsConnect(options);
}

/** A hint for the errors an operator can fix in the config (see the header). */
function hint(err: unknown, endpoint: Endpoint): string {
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === "string" && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code))
    return " (the broker's certificate was not verified: check mqtt.ca and the host name)";
  // CONNACK reason code 0x9A (MQTT 5); mqtt.js says "Connection refused: Retain not supported"
  if (code === 0x9a || (typeof message === "string" && /retain not supported/i.test(message)))
    return " (the broker does not keep retained messages: set mqtt.retain: false)";
  if (
    !endpoint.tls &&
    (code === "ECONNRESET" || code === "EPIPE" || message === CLOSED_BEFORE_CONNACK)
  )
    return ` (the broker closed the connection without an answer: if port ${endpoint.port} expects TLS, use mqtts://)`;
  return "";
}

const CLOSED_BEFORE_CONNACK = "connection closed before CONNACK";

/** The connection's read buffer: a socket read takes at most this many bytes. */
const READ_BUFFER_BYTES = 65_536;

/**
 * mqtt-packet keeps a 2-byte buffer for every packet id, 65,536 of them (6.8 MB of heap, a
 * twentieth of the gateway's memory, issue 12), from the first packet mqtt.js writes. Only
 * mqtt.js's few packets (CONNECT, SUBSCRIBE, status messages) go through it here: the hot path
 * encodes its own (publish-packet.ts). Off, it writes the two bytes of an id when it needs them.
 */
writeToStream.cacheNumbers = false;

/** Opens one connection; rejects with MQTT_CONNECT (reason and cause) or ABORTED. */
export async function openConnection(
  opts: ConnectOptions,
  signal: AbortSignal,
): Promise<Connection> {
  const tls = await readTls(opts);
  if (signal.aborted) throw abortError(signal);
  const { endpoint } = opts;
  const retain = opts.retain ?? true;
  const options: IClientOptions = {
    protocolVersion: opts.protocolVersion ?? 5,
    clean: true,
    ...(opts.protocolVersion === 4 ? {} : { properties: { sessionExpiryInterval: 0 } }),
    clientId: opts.clientId,
    keepalive: Math.max(1, Math.round(opts.keepaliveMs / 1000)),
    // a PINGREQ every keepalive, not a keepalive timer moved at every PUBACK (2% of the
    // gateway's time at 10k events/s, issue 12); a dead broker is noticed as soon as before
    reschedulePings: false,
    connectTimeout: opts.connectTimeoutMs,
    reconnectPeriod: 0,
    queueQoSZero: false,
    resubscribe: false,
    manualConnect: true,
    // mqtt.js takes the ids above the ones publish() uses (publish-packet.ts)
    messageIdProvider: new ReservedIdProvider(),
    ...(opts.will
      ? { will: { ...opts.will, retain: opts.will.retain && retain, qos: 1 as const } }
      : {}),
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
  };
  // The first error of the attempt, from the socket or from mqtt.js. mqtt.js swallows socket
  // errors without a `code` (e.g. mqtt-packet refusing to encode the CONNECT), so the socket is
  // listened to directly as well.
  let firstError: unknown;
  const onError = (err: unknown) => {
    firstError ??= err;
  };
  // mqtt.js reads the socket through the filter that takes publish()'s PUBACKs (ack-filter.ts)
  const holdMs = opts.ackHoldMs === undefined ? {} : { holdMs: opts.ackHoldMs };
  const client = new MqttClient(() => {
    let filter: AckFilter | undefined;
    const socket = buildSocket(endpoint, tls, (bytes) => filter?.receive(bytes));
    filter = new AckFilter(socket.on("error", onError), holdMs);
    return filter;
  }, options);
  client.on("error", onError);
  return new Promise<Connection>((resolve, reject) => {
    const fail = (cause: unknown) => {
      cleanup();
      client.end(true);
      if (signal.aborted) return reject(abortError(signal));
      reject(
        new GatewayError(
          "MQTT_CONNECT",
          `connect to ${endpoint.display} as ${opts.clientId} failed${hint(cause, endpoint)}`,
          { cause, details: { url: endpoint.display, clientId: opts.clientId } },
        ),
      );
    };
    const onClose = () => fail(firstError ?? new Error(CLOSED_BEFORE_CONNACK));
    const onAbort = () => fail(abortError(signal));
    const onConnect = (connack: {
      properties?: { receiveMaximum?: number; maximumPacketSize?: number };
    }) => {
      cleanup();
      resolve(
        new Connection(client, {
          endpoint,
          connack: connack.properties ?? {},
          onMessage: opts.onMessage,
          protocolVersion: opts.protocolVersion ?? 5,
          retain,
        }),
      );
    };
    const cleanup = () => {
      client.removeListener("close", onClose);
      client.removeListener("connect", onConnect);
      signal.removeEventListener("abort", onAbort);
    };
    client.on("close", onClose);
    client.on("connect", onConnect);
    signal.addEventListener("abort", onAbort, { once: true });
    client.connect();
  });
}

/** PUBACK reason codes a broker refuses a publish with (MQTT 5.0 section 3.4.2.1). */
const PUBACK_REASONS: Record<number, string> = {
  128: "Unspecified error",
  131: "Implementation specific error",
  135: "Not authorized",
  144: "Topic Name invalid",
  145: "Packet identifier in use",
  151: "Quota exceeded",
  153: "Payload format invalid",
};

export class Connection {
  readonly endpoint: Endpoint;
  /** 5, or 4 (MQTT 3.1.1) with a broker that refused 5. */
  readonly protocolVersion: 4 | 5;
  /** The broker's Receive Maximum (65535 when it announced none). */
  readonly receiveMaximum: number;
  /** The broker's Maximum Packet Size (CONNACK, MQTT 5), when it announced one. */
  readonly maximumPacketSize: number | undefined;
  /** Resolves once the socket closed: with the reason, or undefined after end(). */
  readonly closed: Promise<Error | undefined>;
  private readonly client: MqttClient;
  /**
   * Publishes waiting for their PUBACK, by packet id: 1..FAST_IDS_MAX, at first only twice the
   * broker's Receive Maximum (what may be in flight, with room to hand ids out in rotation),
   * more when a caller sends more than that.
   */
  private readonly waiting: IdSlots<{ topic: string; done: Done }>;
  /** Packets of the current burst, written together at the end of the tick. */
  private burst: Outgoing[] = [];
  /** PUBACKs answered on a later turn: a refusal, and those read after it (acked()). */
  private deferred: (() => void)[] | undefined;
  private isOpen = true;
  private ending = false;
  private reason: Error | undefined;
  private disconnect: number | undefined;
  /** false: the retain flag of every publish is dropped (mqtt.retain: false). */
  private readonly retain: boolean;
  private readonly filter: AckFilter | undefined;
  /** Callers waiting for PUBACKs: while any, reads are not held (hurryAcks()). */
  private hurries = 0;

  constructor(
    client: MqttClient,
    options: {
      endpoint: Endpoint;
      connack: { receiveMaximum?: number; maximumPacketSize?: number };
      onMessage: (topic: string, payload: Buffer, properties: MessageProperties) => void;
      protocolVersion: 4 | 5;
      retain: boolean;
    },
  ) {
    const { endpoint, connack, onMessage, protocolVersion } = options;
    this.client = client;
    this.retain = options.retain;
    this.endpoint = endpoint;
    this.protocolVersion = protocolVersion;
    this.receiveMaximum = connack.receiveMaximum ?? 65_535;
    this.waiting = new IdSlots(Math.min(FAST_IDS_MAX, this.receiveMaximum * 2 + 64));
    this.maximumPacketSize = connack.maximumPacketSize;
    client.on("error", (err) => {
      this.reason ??= err;
    });
    client.on("disconnect", (packet) => {
      const code = packet.reasonCode ?? 0;
      this.disconnect ??= code;
      this.reason ??= new Error(`the broker disconnected (reason code ${code})`);
    });
    client.on("message", (topic, payload, packet) => {
      const p = packet.properties;
      onMessage(topic, payload, {
        ...(p?.responseTopic === undefined ? {} : { responseTopic: p.responseTopic }),
        ...(p?.correlationData === undefined ? {} : { correlationData: p.correlationData }),
        ...(p?.userProperties === undefined ? {} : { userProperties: p.userProperties }),
      });
    });
    // PUBACKs of publish(): the plain ones from the filter, the rest (refusals) through mqtt.js
    const filter = client.stream instanceof AckFilter ? client.stream : undefined;
    this.filter = filter;
    if (filter) {
      filter.onAck = (messageId, reasonCode) => this.acked({ messageId, reasonCode });
      filter.holdReads = () => this.waiting.size > 0 && this.hurries === 0;
    }
    client.on("packetreceive", (packet) => {
      if (packet.cmd !== "puback") return;
      const id = packet.messageId ?? 0;
      if (id < 1 || id > FAST_IDS_MAX) return;
      filter?.passedSeen();
      this.acked(packet);
    });
    this.closed = new Promise((resolve) => {
      client.once("close", () => {
        this.isOpen = false;
        const why = this.ending
          ? undefined
          : new GatewayError("MQTT_CONNECTION_LOST", `connection to ${endpoint.display} lost`, {
              cause: this.reason ?? new Error("socket closed"),
            });
        const waiting = this.waiting.takeAll();
        this.burst = [];
        for (const w of waiting) w.done(why ?? new Error("connection ended"));
        // mqtt.js keeps its stores and callbacks: release them (no reconnect, no timers).
        client.end(true);
        resolve(why);
      });
    });
  }

  get open(): boolean {
    return this.isOpen;
  }

  /** The reason code of the broker's DISCONNECT (MQTT 5), when it sent one. */
  get disconnectCode(): number | undefined {
    return this.disconnect;
  }

  /**
   * Until the returned function is called, PUBACKs are read as they arrive (someone waits for
   * one: room in the window, the end); otherwise a read is held a few milliseconds while
   * PUBACKs are awaited (ack-filter.ts). Each caller releases only its own hurry.
   */
  hurryAcks(): () => void {
    this.hurries += 1;
    this.filter?.readNow();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.hurries -= 1;
    };
  }

  /** Sends with QoS 1; resolves on a successful PUBACK, rejects on a refusal or a lost socket. */
  publish(topic: string, payload: string, retain: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.send(topic, payload, retain, (err) => (err === undefined ? resolve() : reject(err))),
    );
  }

  /**
   * publish() without a promise, for the hot path (two promises and a queue turn less per
   * event): `done` is called once, without an error on a successful PUBACK (synchronously,
   * as the PUBACK is read, unless a refusal came before it: acked()), with the refusal or the
   * loss otherwise (a refusal on the turn after its read, a loss when the socket closed, a
   * publish that cannot be sent on a later turn).
   */
  send(topic: string, payload: string, retain: boolean, done: Done): void {
    const unsent = this.unsendable(topic);
    const id = unsent === undefined ? this.takeId({ topic, done }) : undefined;
    if (id === undefined) {
      const err = unsent ?? new Error("no packet id free");
      queueMicrotask(() => done(err));
      return;
    }
    const topicBytes = Buffer.byteLength(topic);
    const payloadBytes = Buffer.byteLength(payload);
    this.burst.push({
      topic,
      topicBytes,
      payload,
      payloadBytes,
      retain: retain && this.retain,
      id,
    });
    if (this.burst.length === 1) queueMicrotask(() => this.flush());
  }

  /** A packet id for a publish: more ids when they are all in flight, up to FAST_IDS_MAX. */
  private takeId(waiter: { topic: string; done: Done }): number | undefined {
    const id = this.waiting.add(waiter);
    if (id !== undefined || this.waiting.capacity >= FAST_IDS_MAX) return id;
    this.waiting.grow(Math.min(FAST_IDS_MAX, this.waiting.capacity * 2));
    return this.waiting.add(waiter);
  }

  /** Why a publish to `topic` cannot go now, if it cannot. */
  private unsendable(topic: string): Error | undefined {
    if (!this.isOpen || this.ending) return new Error("connection closed");
    if (topic === "" || topic.includes("+") || topic.includes("#")) {
      return new GatewayError("MQTT_PUBLISH", `publish to ${topic} refused: invalid topic name`, {
        details: { topic },
      });
    }
    return undefined;
  }

  /** Writes the burst of this tick in one buffer. */
  private flush(): void {
    const burst = this.burst;
    this.burst = [];
    if (burst.length === 0 || !this.isOpen) return;
    this.client.stream.write(encodeBurst(burst, this.protocolVersion));
  }

  /**
   * A PUBACK of publish(): `done` at once for a success; a refusal on a later turn, once every
   * packet of the read is parsed (mqtt.js's handler is still running: the publisher may close
   * the connection on a refusal), and any PUBACK after a refusal waits behind it, in order.
   */
  private acked(packet: { messageId?: number; reasonCode?: number }): void {
    const id = packet.messageId ?? 0;
    const w = this.waiting.take(id);
    if (w === undefined) return;
    const code = packet.reasonCode ?? 0;
    // 0 success, 16 no matching subscribers (MQTT 5.0 3.4.2.1): delivered as far as we know
    if (code < 0x80 && this.deferred === undefined) {
      w.done();
      return;
    }
    const err =
      code < 0x80
        ? undefined
        : new GatewayError("MQTT_PUBLISH", `publish to ${w.topic} refused`, {
            cause: new Error(`Publish error: ${PUBACK_REASONS[code] ?? `reason code ${code}`}`),
            details: { topic: w.topic, reasonCode: code },
          });
    if (this.deferred === undefined) {
      this.deferred = [];
      queueMicrotask(() => {
        const calls = this.deferred ?? [];
        this.deferred = undefined;
        for (const call of calls) call();
      });
    }
    this.deferred.push(() => w.done(err));
  }

  /**
   * Sends an answer (QoS 1, never retained) with its Correlation Data, through mqtt.js: rare
   * messages with properties, kept off publish()'s burst encoder. Its packet id is one of
   * mqtt.js's (above publish()'s); the caller counts it against the in-flight window.
   */
  async respond(message: ResponseMessage): Promise<void> {
    if (!this.isOpen || this.ending) throw new Error("connection closed");
    const properties = {
      contentType: "application/json",
      ...(message.correlationData === undefined
        ? {}
        : { correlationData: message.correlationData }),
    };
    try {
      await this.client.publishAsync(message.topic, message.payload, {
        qos: 1,
        retain: false,
        ...(this.protocolVersion === 5 ? { properties } : {}),
      });
    } catch (err) {
      throw new GatewayError("MQTT_PUBLISH", `answer on ${message.topic} not acknowledged`, {
        cause: err,
        details: { topic: message.topic },
      });
    }
  }

  /** Subscribes with QoS 1; rejects when the broker refuses the filter. */
  async subscribe(filter: string): Promise<void> {
    try {
      await this.client.subscribeAsync(filter, { qos: 1 });
    } catch (err) {
      throw new GatewayError(
        "MQTT_SUBSCRIBE",
        `subscribe to ${filter} on ${this.endpoint.display} refused`,
        { cause: err, details: { filter } },
      );
    }
  }

  /**
   * Ends cleanly: DISCONNECT, so the broker discards the will (or, with sendWill, publishes
   * it). Publishes still waiting for their
   * PUBACK are abandoned (they stay unpublished in the journal). Forced after timeoutMs.
   */
  async end(timeoutMs: number, options: { sendWill?: boolean } = {}): Promise<void> {
    if (!this.isOpen) return;
    this.ending = true;
    for (const id of Object.keys(this.client.outgoing))
      this.client.removeOutgoingMessage(Number(id));
    if (options.sendWill && this.protocolVersion === 4) {
      // MQTT 3.1.1 has no way to ask for the will: a connection lost without DISCONNECT does it.
      this.client.stream.destroy();
      return;
    }
    // MQTT 5 reason code 0x04, "disconnect with will message": the broker publishes the will.
    if (options.sendWill) this.client.end(false, { reasonCode: 0x04 });
    else this.client.end(false);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        // end(true) is a no-op while mqtt.js is disconnecting: drop the socket itself.
        this.client.stream.destroy();
        resolve();
      }, timeoutMs);
    });
    await Promise.race([this.closed, timedOut]);
    clearTimeout(timer);
  }

  /** Drops the socket without DISCONNECT: the broker publishes the will. */
  destroy(reason: Error): void {
    if (!this.isOpen) return;
    this.reason ??= reason;
    this.client.stream.destroy();
  }
}
