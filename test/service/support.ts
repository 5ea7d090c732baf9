/**
 * Helpers for the service tests (the daemon as systemd runs it): the built CLI started as a
 * real process with its JSON log lines parsed as they come, and a fake NOTIFY_SOCKET (an
 * AF_UNIX datagram socket bound by Debian's python3, since Node.js cannot bind one) that
 * prints every sd_notify datagram as a line. Missing tools fail with the apt hint.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, ROOT } from "../support/cli.ts";
import { which } from "../systemd/support.ts";

export { waitUntil } from "../e2e/harness.ts";

const PYTHON = "/usr/bin/python3";

/**
 * Waits for a quiet spell: `count()` unchanged for `quietMs`, within `timeoutMs`; returns the
 * count. Messages already on their way (a systemd-notify spawned before a pause, the relay's
 * pipe) land before the spell starts, however slow the machine, and none can come inside it
 * unless something is still sending: no fixed sleep decides the outcome.
 */
export async function waitQuiet(
  count: () => number,
  quietMs: number,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = count();
  let since = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 25));
    const now = count();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return last;
    }
    if (Date.now() > deadline)
      throw new Error(`no ${quietMs} ms without ${what} within ${timeoutMs} ms (${last} so far)`);
  }
}

export interface LogLine {
  level: number;
  msg: string;
  time: string;
  [key: string]: unknown;
}

export interface Daemon {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** stdout's lines parsed as JSON (throws on a line that is not JSON). */
  lines(): LogLine[];
  /** SIGTERM (unless it already exited) and the exit code. */
  stop(): Promise<number | null>;
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

export function startDaemon(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; nodeArgs?: readonly string[] } = {},
): Daemon {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build`);
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, NOTIFY_SOCKET: undefined, WATCHDOG_USEC: undefined, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    lines: () =>
      out
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => {
          try {
            return JSON.parse(l) as LogLine;
          } catch {
            throw new Error(`not a JSON log line: ${l}`);
          }
        }),
    stop: async () => {
      if (running()) child.kill("SIGTERM");
      return exited;
    },
    kill: async () => {
      if (running()) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** A temp dir holding `gateway.yaml` with this text; `data` is a fresh data dir inside. */
export function writeConfig(text: (dataDir: string) => string): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-service-"));
  const config = join(dir, "gateway.yaml");
  writeFileSync(config, text(join(dir, "data")));
  return { dir, config };
}

export function requireSystemdNotify(): string {
  const found = which("systemd-notify");
  if (!found)
    throw new Error(
      "systemd-notify is missing: apt-get install -y systemd (the service tests need it)",
    );
  return found;
}

const SERVER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("LISTENING", flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)  # systemd-notify's barrier waits for this
    print(data.decode("utf-8", "replace").strip().replace("\\n", "|"), flush=True)
`;

export interface NotifySocket {
  path: string;
  /** Each datagram, its assignments joined by "|" (BARRIER=1 datagrams left out). */
  messages: string[];
  close(): Promise<void>;
}

export async function startNotifySocket(): Promise<NotifySocket> {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: apt-get install -y python3`);
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-notify-"));
  const path = join(dir, "notify.sock");
  const child = spawn(PYTHON, ["-c", SERVER, path], { stdio: ["ignore", "pipe", "pipe"] });
  const messages: string[] = [];
  let errors = "";
  child.stderr!.on("data", (d: Buffer) => (errors += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let pending = "";
    child.stdout!.on("data", (d: Buffer) => {
      pending += d.toString();
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const line of parts) {
        if (line === "LISTENING") resolve();
        else if (line !== "BARRIER=1") messages.push(line);
      }
    });
    void exited.then(() => reject(new Error(`notify socket server exited: ${errors}`)));
  });
  return {
    path,
    messages,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
