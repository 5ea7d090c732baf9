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
 * At most one WATCHDOG waits in the queue: a slow systemd-notify never piles pings up.
 *
 * A failed spawn (the binary missing for a moment during an upgrade, EAGAIN, EMFILE) or a
 * systemd-notify that exits non-zero is never a permanent state (issue 13.5): a failed WATCHDOG
 * is dropped (the next ping comes half a timeout later), any other message is tried again with
 * a backoff (RETRY_MS, capped) until it goes, messages behind it keep their order. The first
 * failure of a run of failures is logged, and the recovery. drain() (at shutdown) tries each
 * message still failing once more, then gives up on it: a stop never waits on a missing binary.
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
  /**
   * Resolves once every message queued so far was handed to systemd, or, for one that keeps
   * failing, tried once more (at shutdown: never a wait on a missing binary).
   */
  drain(): Promise<void>;
}

export interface NotifierOptions {
  env: Record<string, string | undefined>;
  pid: number;
  log: Logger;
  /** The binary; default systemd-notify from PATH. */
  command?: string;
}

/** Waits before a failed message is tried again; the last one repeats. */
const RETRY_MS = [100, 250, 500, 1000, 2000, 5000];

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
  let failing = false;
  let draining = false;
  /** Ends the wait before a retry at once (drain). */
  let wake: (() => void) | undefined;
  let watchdogQueued = false;
  let timer: NodeJS.Timeout | undefined;

  /** One systemd-notify; resolves with the failure, or undefined once it exited 0. */
  const spawnOne = (assignments: string[]) =>
    new Promise<string | undefined>((resolve) => {
      const child = spawn(command, [`--pid=${pid}`, ...assignments], {
        stdio: "ignore",
        env: { ...env },
      });
      child.once("error", (err) => resolve(err.message));
      child.once("exit", (code, signal) =>
        resolve(code === 0 ? undefined : `exited with ${signal ?? `code ${code}`}`),
      );
    });

  /** Sends one message; a failed one is retried unless `once` (a WATCHDOG) or draining. */
  const deliver = async (assignments: string[], once: boolean) => {
    for (let attempt = 0; ; attempt++) {
      const failure = await spawnOne(assignments);
      if (failure === undefined) {
        if (failing) log.info({ command }, "notifying systemd again");
        failing = false;
        return;
      }
      if (!failing) {
        log.warn(
          { err: failure, command, message: assignments[0] },
          "cannot notify systemd; retrying",
        );
      }
      failing = true;
      if (once || draining) return;
      const wait = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]!;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, wait).unref();
      });
      wake = undefined;
    }
  };

  const send = (...assignments: string[]) => {
    chain = chain.then(() => deliver(assignments, false));
  };

  const ping = () => {
    if (watchdogQueued) return;
    watchdogQueued = true;
    chain = chain.then(() => {
      watchdogQueued = false;
      return deliver(["WATCHDOG=1"], true);
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
    drain: () => {
      draining = true;
      wake?.();
      return chain;
    },
  };
}
