/**
 * The systemd service protocol (sd_notify): READY=1 once the gateway is doing its job,
 * WATCHDOG=1 while its loops are alive, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around
 * a config reload, STOPPING=1 on shutdown. Without NOTIFY_SOCKET it does nothing and spawns
 * nothing.
 *
 * Node.js has no AF_UNIX datagram sockets (nodejs/node#31414), so each message is sent by the
 * `systemd-notify` binary with --pid of this process; the unit says NotifyAccess=all. Messages
 * are sent one at a time, in order: a WATCHDOG can never overtake the READY before it.
 *
 * The watchdog ping runs on a timer of the event loop: a blocked loop stops it by itself. The
 * `alive` check adds what a timer cannot see (a publisher making no progress while connected).
 * At most one WATCHDOG waits in the queue: a slow systemd-notify never piles pings up. A
 * missing binary is reported once and then nothing more is spawned.
 */
import { spawn } from "node:child_process";
import type { Logger } from "../lib/logger.ts";

export interface ServiceNotifier {
  ready(status?: string): void;
  /** RELOADING=1 now; call ready() when the reload is done (or refused). */
  reloading(): void;
  stopping(): void;
  /**
   * Starts pinging the watchdog every half of WATCHDOG_USEC while `alive()` says so; `alive` is
   * given how long no progress counts as stuck: twice the watchdog timeout, so that systemd
   * restarts a gateway stuck for about three timeouts, never one that is merely slow.
   */
  startWatchdog(alive: (stuckAfterMs: number) => boolean): void;
  /** Resolves once every message queued so far was handed to systemd. */
  drain(): Promise<void>;
}

export interface NotifierOptions {
  env: Record<string, string | undefined>;
  pid: number;
  log: Logger;
  /** The binary; default systemd-notify from PATH. */
  command?: string;
}

const NOOP: ServiceNotifier = {
  ready: () => {},
  reloading: () => {},
  stopping: () => {},
  startWatchdog: () => {},
  drain: async () => {},
};

export function createServiceNotifier(options: NotifierOptions): ServiceNotifier {
  const { env, pid, log } = options;
  if (!env.NOTIFY_SOCKET) return NOOP;
  const command = options.command ?? "systemd-notify";
  let chain: Promise<void> = Promise.resolve();
  let broken = false;
  let watchdogQueued = false;
  let timer: NodeJS.Timeout | undefined;

  const spawnOne = (assignments: string[]) =>
    new Promise<void>((resolve) => {
      if (broken) return resolve();
      const child = spawn(command, [`--pid=${pid}`, ...assignments], {
        stdio: "ignore",
        env: { ...env },
      });
      child.once("error", (err) => {
        broken = true;
        log.warn({ err: err.message, command }, "cannot notify systemd");
        resolve();
      });
      child.once("exit", () => resolve());
    });

  const send = (...assignments: string[]) => {
    chain = chain.then(() => spawnOne(assignments));
  };

  const ping = () => {
    if (watchdogQueued) return;
    watchdogQueued = true;
    chain = chain.then(() => {
      watchdogQueued = false;
      return spawnOne(["WATCHDOG=1"]);
    });
  };

  const watchdogUsec = Number(env.WATCHDOG_USEC);
  const watchdogFor = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === pid;

  return {
    ready: (status) => send("READY=1", ...(status ? [`STATUS=${status}`] : [])),
    reloading: () =>
      send("RELOADING=1", `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`, "STATUS=reloading"),
    stopping: () => {
      if (timer) clearInterval(timer);
      timer = undefined;
      send("STOPPING=1");
    },
    startWatchdog: (alive) => {
      if (!watchdogFor || !(watchdogUsec > 0) || timer) return;
      const everyMs = Math.max(50, Math.floor(watchdogUsec / 2000));
      const stuckAfterMs = Math.floor(watchdogUsec / 500);
      timer = setInterval(() => {
        if (alive(stuckAfterMs)) ping();
        else log.error({}, "not pinging the watchdog: the gateway is stuck");
      }, everyMs);
      timer.unref();
    },
    drain: () => chain,
  };
}
