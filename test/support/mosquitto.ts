/**
 * A real mosquitto broker for integration tests, never a mock: `startMosquitto()` writes a config
 * into a temp dir, runs /usr/sbin/mosquitto on a free 127.0.0.1 port and resolves once it accepts
 * TCP connections. `stop()` (SIGTERM, persistence saved) and `start()` restart it on the same port
 * with the same config; `kill()` is SIGKILL. A missing binary throws with the install command:
 * these tests never skip. Also: a test PKI made with openssl, a password file made with
 * mosquitto_passwd, and a subscriber that collects what the broker delivers.
 *
 * `set_tcp_nodelay true` matters: with Nagle on, mosquitto's delayed PUBACKs stall a pipelined
 * QoS 1 publisher (about 2.3k vs 80k msg/s on loopback).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";

const MOSQUITTO = "/usr/sbin/mosquitto";

export interface Broker {
  url: string;
  port: number;
  /** The temp dir of the config, the persistence file and the log. */
  dir: string;
  /** SIGTERM; resolves once the process exited (persistence is saved on the way out). */
  stop(): Promise<void>;
  /** Restarts on the same port with the same config. */
  start(): Promise<void>;
  /** SIGKILL; resolves once the process exited. */
  kill(): Promise<void>;
  /** SIGSTOP: the broker stops answering while its connections stay open (a hung broker). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** What mosquitto logged so far (stderr). */
  output(): string;
  /** Replaces the ACL file (needs the `acl` option) and reloads it with SIGHUP. */
  setAcl(text: string): void;
  /** How many times a client with this id connected so far (the broker's log lines). */
  connections(clientId: string): number;
  /** Restarts on the same port with other extra config lines (`config`). */
  reconfigure(config: readonly string[]): Promise<void>;
}

export interface BrokerTls {
  certFile: string;
  keyFile: string;
}

export interface MosquittoOptions {
  /** A TLS listener (url mqtts://) with this server certificate. */
  tls?: BrokerTls;
  /** A mosquitto_passwd file: anonymous clients are then refused. */
  passwordFile?: string;
  /** Keep sessions and queued messages across stop()/start(). */
  persistence?: boolean;
  /** The text of a mosquitto ACL file (topic read/write rules). */
  acl?: string;
  /** More mosquitto.conf lines, such as `max_packet_size 540`. */
  config?: readonly string[];
}

export function requireMosquitto(): void {
  if (!existsSync(MOSQUITTO)) throw new Error("mosquitto is missing: apt-get install -y mosquitto");
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function configText(port: number, dir: string, opts: MosquittoOptions): string {
  const lines = [
    // Running as root, mosquitto would switch to the mosquitto user and lose access to the
    // temp dir; keep the current user.
    ...(process.getuid?.() === 0 ? ["user root"] : []),
    "per_listener_settings false",
    `listener ${port} 127.0.0.1`,
    "set_tcp_nodelay true",
    "max_queued_messages 0",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "log_type notice",
    "log_type information",
    "connection_messages true",
  ];
  if (opts.passwordFile) lines.push("allow_anonymous false", `password_file ${opts.passwordFile}`);
  else lines.push("allow_anonymous true");
  if (opts.persistence)
    lines.push("persistence true", `persistence_location ${dir}/`, "autosave_interval 0");
  if (opts.acl !== undefined) lines.push(`acl_file ${join(dir, "acl")}`);
  if (opts.tls) lines.push(`certfile ${opts.tls.certFile}`, `keyfile ${opts.tls.keyFile}`);
  lines.push(...(opts.config ?? []));
  return `${lines.join("\n")}\n`;
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Broker> {
  requireMosquitto();
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-mosquitto-"));
  const conf = join(dir, "mosquitto.conf");
  if (opts.acl !== undefined) writeFileSync(join(dir, "acl"), opts.acl);
  let port = 0;
  let child: ChildProcess | undefined;
  let output = "";

  const launch = async (): Promise<void> => {
    const proc = spawn(MOSQUITTO, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    child = proc;
    proc.stderr?.setEncoding("utf8");
    proc.stderr?.on("data", (chunk: string) => {
      output += chunk;
    });
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(port))) {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`mosquitto exited at start (port ${port}): ${output}`);
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}: ${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const end = (signal: NodeJS.Signals): Promise<void> =>
    new Promise<void>((resolve) => {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once("exit", () => resolve());
      proc.kill(signal);
    });

  // The free port may be taken between probing and binding: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    writeFileSync(conf, configText(port, dir, opts));
    try {
      await launch();
      break;
    } catch (err) {
      await end("SIGKILL");
      if (attempt >= 3) throw err;
    }
  }

  return {
    url: `${opts.tls ? "mqtts" : "mqtt"}://127.0.0.1:${port}`,
    port,
    dir,
    stop: () => end("SIGTERM"),
    kill: () => end("SIGKILL"),
    start: async () => {
      await end("SIGTERM");
      await launch();
    },
    freeze: () => {
      child?.kill("SIGSTOP");
    },
    thaw: () => {
      child?.kill("SIGCONT");
    },
    output: () => output,
    setAcl: (text) => {
      if (opts.acl === undefined) throw new Error("setAcl needs a broker started with `acl`");
      writeFileSync(join(dir, "acl"), text);
      child?.kill("SIGHUP");
    },
    connections: (clientId) => {
      const line = new RegExp(
        `New client connected from \\S+ as ${escapeRegExp(clientId)} \\(`,
        "g",
      );
      return output.match(line)?.length ?? 0;
    },
    reconfigure: async (config) => {
      await end("SIGTERM");
      writeFileSync(conf, configText(port, dir, { ...opts, config }));
      await launch();
    },
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export interface TestPki {
  /** The CA that signed the broker's certificate. */
  caFile: string;
  certFile: string;
  keyFile: string;
  /** A CA that signed nothing the broker has: verification against it must fail. */
  otherCaFile: string;
}

/** A CA and a server certificate for 127.0.0.1 and localhost, made with openssl. */
export function createTestPki(dir = mkdtempSync(join(tmpdir(), "plc2mqtt-pki-"))): TestPki {
  try {
    execFileSync("sh", ["-c", "command -v openssl"], { stdio: "ignore" });
  } catch {
    throw new Error("openssl is missing: apt-get install -y openssl");
  }
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ca = (name: string) =>
    run(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
    );
  ca("test-ca");
  ca("other-ca");
  run(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
  );
  writeFileSync(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  run(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "test-ca.crt",
    "-CAkey",
    "test-ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "server.ext",
    "-out",
    "server.crt",
  );
  return {
    caFile: join(dir, "test-ca.crt"),
    certFile: join(dir, "server.crt"),
    keyFile: join(dir, "server.key"),
    otherCaFile: join(dir, "other-ca.crt"),
  };
}

/** A mosquitto password file holding one user. */
export function createPasswordFile(user: string, password: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "plc2mqtt-passwd-")), "passwd");
  try {
    execFileSync("mosquitto_passwd", ["-b", "-c", file, user, password], { stdio: "pipe" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new Error("mosquitto_passwd is missing: apt-get install -y mosquitto");
    throw err;
  }
  return file;
}

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

export interface Subscriber {
  messages: Received[];
  /** Resolves once at least `count` messages arrived (rejects after timeoutMs). */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface SubscriberOptions {
  /** CA file when the broker URL is mqtts://. */
  ca?: string;
  username?: string;
  password?: string;
  /** A persistent session (clean: false) under this client id: survives broker restarts. */
  sessionId?: string;
}

/**
 * Subscribes with QoS 1 and collects every message in arrival order. It reconnects on its own
 * (mqtt.js's reconnect), so with `sessionId` and a persistent broker nothing is missed across a
 * broker restart.
 */
export async function subscribe(
  url: string,
  filter: string,
  opts: SubscriberOptions = {},
): Promise<Subscriber> {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 4,
    clean: opts.sessionId === undefined,
    clientId: opts.sessionId ?? `test-sub-${Math.random().toString(16).slice(2)}`,
    reconnectPeriod: 100,
    connectTimeout: 5000,
    ...(opts.ca ? { ca: readFileSync(opts.ca), rejectUnauthorized: true } : {}),
    ...(opts.username ? { username: opts.username, password: opts.password } : {}),
  });
  const messages: Received[] = [];
  client.on("message", (topic, payload, packet) => {
    messages.push({ topic, payload: payload.toString("utf8"), retain: packet.retain });
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    messages,
    waitFor: async (count, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline)
          throw new Error(`subscriber got ${messages.length} of ${count} messages on ${filter}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: async () => {
      await client.endAsync(true);
    },
  };
}
