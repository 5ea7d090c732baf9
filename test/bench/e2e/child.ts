/**
 * The bench's helper processes (load sources, subscriber, ceiling publisher) each run in their
 * own Node process, so that their CPU is neither charged to nor stolen from the process that
 * measures. They talk over the IPC channel: the child sends `{ kind: "ready", ... }` once, and
 * answers `{ kind: "ask", id, what }` with `{ kind: "answer", id, value }` (see serve()).
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface Helper<Ready> {
  pid: number;
  ready: Ready;
  ask<T>(what: string, arg?: unknown): Promise<T>;
  stop(): Promise<void>;
}

interface Message {
  kind: string;
  id?: number;
  value?: unknown;
  error?: string;
}

/** Starts `test/bench/load/<name>.ts` with args; resolves on its ready message. */
export async function startHelper<Ready>(
  name: string,
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<Helper<Ready>> {
  const file = fileURLToPath(new URL(`../load/${name}.ts`, import.meta.url));
  const child: ChildProcess = fork(file, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} not ready in ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.on("message", (m: Message) => {
      if (m.kind === "ready") {
        clearTimeout(timer);
        resolve(m.value as Ready);
      } else if (m.kind === "answer" && m.id !== undefined) {
        const w = waiting.get(m.id);
        waiting.delete(m.id);
        if (m.error !== undefined) w?.reject(new Error(`${name}: ${m.error}`));
        else w?.resolve(m.value);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${child.exitCode})`));
      for (const w of waiting.values()) w.reject(new Error(`${name} exited`));
      waiting.clear();
    });
  }).catch(async (err: unknown) => {
    child.kill("SIGKILL");
    await exited;
    throw err;
  });
  return {
    pid: child.pid!,
    ready,
    ask: <T>(what: string, arg?: unknown) =>
      new Promise<T>((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null)
          return reject(new Error(`${name} is not running`));
        const id = nextId++;
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ kind: "ask", id, what, arg });
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** In a helper: says ready, then answers questions with `answer(what, arg)`. */
export function serve(
  ready: unknown,
  answer: (what: string, arg: unknown) => unknown | Promise<unknown>,
  onStop: () => Promise<void> | void = () => {},
): void {
  process.on("message", async (m: { kind: string; id: number; what: string; arg: unknown }) => {
    if (m.kind !== "ask") return;
    try {
      process.send?.({ kind: "answer", id: m.id, value: await answer(m.what, m.arg) });
    } catch (err) {
      process.send?.({ kind: "answer", id: m.id, error: String(err) });
    }
  });
  const stop = async () => {
    await onStop();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("disconnect", () => void stop());
  process.send?.({ kind: "ready", value: ready });
}
