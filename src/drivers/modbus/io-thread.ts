/**
 * A Modbus device read on an I/O thread of its own (thread-choice.ts says when): the Driver
 * the runner sees on the main thread, and a ModbusDriver on a worker thread
 * (io-thread-entry.ts) that does the device's I/O, so that a poll's requests follow each other
 * at the device's pace however long the main thread's turns are (a group commit, a burst of
 * publishes). The runner keeps its timers, retries and status as for any driver.
 *
 * Invariants:
 * - One thread per connection: connect() starts it, close() ends it. What the driver learned
 *   (transaction ids not echoed) and counted (retries) is carried to the next thread.
 * - Every call settles exactly once: with the thread's answer, or when the thread exits with
 *   MODBUS_DISCONNECTED (the runner then reconnects, as after a lost connection).
 * - pollGroups() and the decision whether a tag map applies on the live connection come from a
 *   planner on this thread (a ModbusDriver that never connects); the thread applies the same
 *   map. A poll group crosses as its index at a generation (the count of maps applied), an
 *   ad-hoc read as its list of tags.
 * - `connected` is what the thread said with its last answer.
 */
import { Worker } from "node:worker_threads";
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";
import type { DeviceConfig } from "../../config/schema/root.ts";
import { abortError, withTimeout } from "../../lib/abort.ts";
import { GatewayError, isGatewayError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logger.ts";
import type {
  Driver,
  DriverContext,
  DriverStats,
  PolledSamples,
  PollGroup,
  TagSample,
} from "../types.ts";
import { ModbusDriver, type ModbusGroup } from "./driver.ts";
import { PollOutbox } from "./io-thread-outbox.ts";
import { SampleUnpacker } from "./io-thread-samples.ts";
import {
  type Call,
  type Carried,
  fieldsFromWire,
  fromWire,
  type GroupRef,
  type Reply,
  type ThreadState,
} from "./io-thread-wire.ts";

/** The entry beside this file: .ts when run from the sources (tests), .js when built. */
const ENTRY = new URL(
  import.meta.url.endsWith(".ts") ? "./io-thread-entry.ts" : "./io-thread-entry.js",
  import.meta.url,
);

/** How long close() waits for the thread to close its link before it ends the thread. */
const CLOSE_WAIT_MS = 5000;

type CallBody = Call extends infer C ? (C extends { id: number } ? Omit<C, "id"> : never) : never;

/** A poll group the thread polls at its own rate (nextPoll); its polls wait in the outbox. */
interface Schedule {
  id: number;
  key: string;
  /** Why the schedule ended (the connection is gone, or it was stopped). */
  ended?: unknown;
  waiter?: { resolve(poll: PolledSamples): void; reject(err: unknown): void };
}

interface Thread {
  worker: Worker;
  /** Polls and corrections the runner has not taken yet, in the thread's order. */
  outbox: PollOutbox;
  /** The names of the thread's packed polls (io-thread-samples.ts): every poll is unpacked. */
  names: SampleUnpacker;
  /** close() began: polls not taken are dropped, not handed on. */
  closing: boolean;
  /** By `${generation}:${index}` of the planner's group. */
  schedules: Map<string, Schedule>;
  pending: Map<number, { resolve(value: unknown): void; reject(err: unknown): void }>;
  /** Removes the abort listeners of connect and subscribe, whose signals outlive the call. */
  cleanups: (() => void)[];
}

export class ThreadedModbusDriver implements Driver {
  readonly id: string;
  #device: ModbusDeviceConfig;
  readonly #planner: ModbusDriver;
  #thread: Thread | undefined;
  #connected = false;
  #carried: Carried = { retries: 0 };
  #generation = 0;
  #nextId = 1;
  #log: Logger | undefined;
  #onSamples: ((samples: TagSample[]) => void) | undefined;
  #closing: Promise<void> | undefined;

  readonly #entry: URL;

  /** `entry`: the thread's module (tests give one that fails); default io-thread-entry. */
  constructor(device: ModbusDeviceConfig, options: { entry?: URL } = {}) {
    this.#entry = options.entry ?? ENTRY;
    this.id = device.id;
    this.#device = device;
    this.#planner = new ModbusDriver(device, { threaded: true });
  }

  get connected(): boolean {
    return this.#connected;
  }

  pollGroups(): readonly ModbusGroup[] {
    return this.#planner.pollGroups();
  }

  stats(): DriverStats {
    return { retries: this.#carried.retries ?? 0 };
  }

  async connect(ctx: DriverContext): Promise<void> {
    await this.close();
    this.#log = ctx.log;
    this.#thread = this.#start();
    await this.#call({ op: "connect" }, ctx, true);
  }

  async read(ctx: DriverContext, group?: PollGroup): Promise<TagSample[]> {
    // no thread, no connection: the planner answers as a driver that is not connected does
    if (!this.#thread) return this.#planner.read(ctx, group);
    const ref = this.#ref(group);
    return (await this.#call({ op: "read", ...(ref ? { group: ref } : {}) }, ctx)) as TagSample[];
  }

  /**
   * The group's next poll: the thread polls it at its interval from the first call on (until
   * that call's signal aborts, a regroup or the connection's end), whatever this thread does.
   */
  async nextPoll(ctx: DriverContext, group: PollGroup): Promise<PolledSamples> {
    const thread = this.#thread;
    const index = this.#planner.pollGroups().indexOf(group as ModbusGroup);
    if (!thread || index < 0) {
      const samples = await this.read(ctx, group);
      return { samples, durationMs: 0, skipped: 0 };
    }
    const key = `${this.#generation}:${index}`;
    let schedule = thread.schedules.get(key);
    if (!schedule) {
      const id = this.#nextId; // the id #call below gives the call
      const started: Schedule = { id, key };
      schedule = started;
      thread.schedules.set(key, started);
      const ref = { index, generation: this.#generation };
      this.#call({ op: "poll", group: ref, interval: group.interval }, ctx).then(
        () => this.#end(thread, started, abortError(ctx.signal)),
        (err: unknown) => this.#end(thread, started, err),
      );
    }
    const poll = thread.outbox.take(schedule.id);
    if (poll) {
      thread.worker.postMessage({ op: "taken", id: schedule.id } satisfies Call);
      return poll;
    }
    if (schedule.ended !== undefined) {
      thread.schedules.delete(key);
      throw schedule.ended;
    }
    const waiting = schedule;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        waiting.waiter = undefined;
        reject(abortError(ctx.signal));
      };
      if (ctx.signal.aborted) return onAbort();
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      waiting.waiter = {
        resolve: (value) => {
          ctx.signal.removeEventListener("abort", onAbort);
          thread.worker.postMessage({ op: "taken", id: waiting.id } satisfies Call);
          resolve(value);
        },
        reject: (err) => {
          ctx.signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
    });
  }

  async subscribe(ctx: DriverContext, onSamples: (samples: TagSample[]) => void): Promise<void> {
    this.#onSamples = onSamples;
    if (this.#thread) await this.#call({ op: "subscribe" }, ctx, true);
  }

  async updateTags(next: DeviceConfig, ctx: DriverContext): Promise<boolean> {
    if (next.protocol !== this.#device.protocol || next.id !== this.id) return false;
    // the thread first (it knows the connection); the planner follows only what it applied
    if (this.#thread && !(await this.#call({ op: "updateTags", next }, ctx))) return false;
    if (!(await this.#planner.updateTags(next, ctx))) return false;
    this.#device = next as ModbusDeviceConfig;
    this.#generation++;
    return true;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close().finally(() => {
      this.#closing = undefined;
    });
    return this.#closing;
  }

  /** Closes the link on the thread (waiting CLOSE_WAIT_MS at most), then ends the thread. */
  async #close(): Promise<void> {
    const thread = this.#thread;
    if (!thread) return;
    thread.closing = true;
    try {
      await withTimeout(
        this.#call({ op: "close" }),
        CLOSE_WAIT_MS,
        () => new Error("the I/O thread did not close its link in time"),
      );
    } catch {
      // the thread is gone already, or hangs: it is ended below either way
    }
    this.#forget(thread);
    await thread.worker.terminate();
  }

  #start(): Thread {
    const worker = new Worker(this.#entry, {
      name: `modbus-io ${this.id}`,
      workerData: { device: this.#device, carried: this.#carried, generation: this.#generation },
    });
    const thread: Thread = {
      worker,
      outbox: new PollOutbox((samples) => this.#onSamples?.(samples)),
      names: new SampleUnpacker(),
      closing: false,
      schedules: new Map(),
      pending: new Map(),
      cleanups: [],
    };
    worker.on("message", (reply: Reply) => this.#receive(thread, reply));
    worker.on("error", (err) => {
      this.#log?.error({ err, device: this.id }, "Modbus I/O thread failed");
    });
    worker.on("exit", (code) => {
      this.#forget(thread);
      const err = new GatewayError(
        "MODBUS_DISCONNECTED",
        `device ${this.id}: its I/O thread stopped (exit code ${code})`,
        { details: { device: this.id } },
      );
      for (const { reject } of thread.pending.values()) reject(err);
      thread.pending.clear();
    });
    return thread;
  }

  #receive(thread: Thread, reply: Reply): void {
    switch (reply.kind) {
      case "result": {
        const waiter = thread.pending.get(reply.id);
        thread.pending.delete(reply.id);
        if (this.#thread === thread) this.#follow(reply.state);
        if (reply.ok) waiter?.resolve(reply.value);
        else waiter?.reject(fromWire(reply.error));
        return;
      }
      case "poll": {
        if (this.#thread !== thread) return;
        // first: a poll's new names are needed by the next polls, whatever becomes of this one
        const samples = thread.names.unpack(reply.samples);
        this.#follow(reply.state);
        const schedule = [...thread.schedules.values()].find((s) => s.id === reply.id);
        if (!schedule) return;
        const poll = {
          samples,
          durationMs: reply.durationMs,
          skipped: reply.skipped,
        };
        const waiter = schedule.waiter;
        schedule.waiter = undefined;
        if (waiter) waiter.resolve(poll);
        else thread.outbox.poll(schedule.id, poll);
        return;
      }
      case "samples":
        // readings put in doubt: after the polls the thread sent before them (io-thread-outbox.ts)
        if (this.#thread === thread) thread.outbox.doubt(reply.samples);
        return;
      case "log":
        this.#log?.[reply.level](fieldsFromWire(reply.fields), reply.msg);
        return;
    }
  }

  /** The thread is closed or gone: its listeners removed, its corrections handed on. */
  #forget(thread: Thread): void {
    for (const cleanup of thread.cleanups.splice(0)) cleanup();
    thread.closing = true;
    thread.outbox.close();
    if (this.#thread === thread) {
      this.#thread = undefined;
      this.#connected = false;
    }
  }

  /** A schedule ended: its waiter (or the next nextPoll, after the polls left) gets why. */
  #end(thread: Thread, schedule: Schedule, why: unknown): void {
    schedule.ended = why;
    // stopped by its caller (a regroup, the runner's stop): nobody takes what is left, so it
    // is handed on (a regroup: reads in progress finish on the old plan) or dropped (closed)
    if (isGatewayError(why, "ABORTED")) {
      thread.schedules.delete(schedule.key);
      thread.outbox.end(schedule.id, !thread.closing);
    }
    const waiter = schedule.waiter;
    schedule.waiter = undefined;
    waiter?.reject(why);
  }

  #follow(state: ThreadState): void {
    this.#connected = state.connected;
    this.#carried = {
      retries: state.retries ?? 0,
      ...(state.learnedIds ? { learnedIds: state.learnedIds } : {}),
    };
  }

  /** A poll group of the planner by its index; any other list of tags as itself. */
  #ref(group: PollGroup | undefined): GroupRef | undefined {
    if (group === undefined) return undefined;
    const index = this.#planner.pollGroups().indexOf(group as ModbusGroup);
    return index >= 0 ? { index, generation: this.#generation } : { tags: group.tags };
  }

  /** Sends a call; `lives`: its signal is forwarded until close (connect, subscribe). */
  #call(body: CallBody, ctx?: DriverContext, lives = false): Promise<unknown> {
    const thread = this.#thread;
    if (!thread) {
      return Promise.reject(
        new GatewayError("MODBUS_DISCONNECTED", `device ${this.id}: not connected`, {
          details: { device: this.id },
        }),
      );
    }
    if (ctx) this.#log = ctx.log;
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const signal = ctx?.signal;
      const onAbort = () => {
        if (this.#thread === thread) thread.worker.postMessage({ op: "abort", id } satisfies Call);
      };
      const unlisten = () => signal?.removeEventListener("abort", onAbort);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (lives) thread.cleanups.push(unlisten);
      thread.pending.set(id, {
        resolve: (value) => {
          if (!lives) unlisten();
          resolve(value);
        },
        reject: (err) => {
          if (!lives) unlisten();
          reject(err);
        },
      });
      thread.worker.postMessage({ ...body, id } as Call);
      if (signal?.aborted) onAbort();
    });
  }
}
