/**
 * The Modbus driver: reads planned requests and decodes them into samples.
 *
 * Invariants:
 * - create() does no I/O: it resolves every tag, groups tags by poll interval and plans each
 *   group's requests once. connect() opens the link; close() ends it and is idempotent.
 * - read() never throws for a failed request: the tags that request covers come back bad with
 *   the reason, the others are unaffected. Only an abort (shutdown) is thrown.
 * - At most `max_in_flight` requests are outstanding on the connection (RTU buses: always 1).
 * - A unit id that timed out twice in a row is skipped until its retry time, doubling up to
 *   30 s, so that one dead unit on a shared bus delays the others at most by one timeout.
 * - Readings a line put in doubt (line-guard.ts: a frame nobody asked for came on a line
 *   without transaction ids) are never left standing as good: those of a read still in
 *   progress come back bad from it, and for those already returned the driver delivers at
 *   once, through subscribe(), a bad sample per tag with reasonCode MODBUS_REPLY_IN_DOUBT.
 * - A Modbus TCP device found not to echo transaction ids (transaction_ids: auto) is read one
 *   request at a time from then on, across reconnects, for the life of the driver.
 * - A transient answer (busy, acknowledge, gateway target failed, a single timeout) is sent
 *   again within the read, bounded by `transient_retries` (transient-retry.ts); the repeats are
 *   counted in stats().retries.
 * - A read refused with exception 2 or 3 is split until its parts answer (hole-probe.ts); what
 *   that teaches about the device (missing registers, a smaller request size) is kept for the
 *   connection (register-facts.ts) and every plan is made again around it. A tag on a missing
 *   register is asked alone at each read, never merged: refused, it is bad with that reason
 *   (without a new probe); answered, the device has the register after all, and the plans
 *   merge it again. The other tags are read as usual.
 * - updateTags() applies a new tag map on the live connection (tag-update.ts says which
 *   settings need a new one): the groups and plans are replaced in one step, reads in progress
 *   finish on the old plan.
 */
import pLimit, { type LimitFunction } from "p-limit";
import { formatModbusAddress, type ModbusTable } from "../../config/modbus-address.ts";
import { type ResolvedModbusTag, resolveModbusTag } from "../../config/modbus-tags.ts";
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";
import type { DeviceConfig } from "../../config/schema/root.ts";
import { formatDuration } from "../../config/units.ts";
import { type ErrorCode, isGatewayError } from "../../lib/errors.ts";
import type { Driver, DriverContext, DriverStats, PollGroup, TagSample } from "../types.ts";
import { type CodecSpec, decodeRegisters } from "./codec.ts";
import {
  probeRefusedRead,
  type ReadFailure,
  type ReadOutcome,
  refusedByMap,
} from "./hole-probe.ts";
import {
  describeRequest,
  type ModbusLink,
  openLink,
  type ReadRequest,
  type TransactionIdMode,
} from "./link.ts";
import { type PlanLimits, type PlannedRead, planAround } from "./read-planner.ts";
import { RegisterFacts } from "./register-facts.ts";
import { spread, stepsOf } from "./spread.ts";
import { changedTags, connectionChange } from "./tag-update.ts";
import { requestsPerSecond, wantsIoThread } from "./thread-choice.ts";
import { failureOf, withRetries } from "./transient-retry.ts";
import { UnitHealth } from "./unit-health.ts";

/** Exception 0x0B, gateway target device failed to respond: counts toward the unit skip. */
const GATEWAY_NO_ANSWER = 11;

export interface ModbusGroup extends PollGroup {
  plan: readonly PlannedRead[];
}

interface Group extends ModbusGroup {
  members: readonly ResolvedModbusTag[];
}

export function codecSpecOf(tag: ResolvedModbusTag): CodecSpec {
  let spec = codecSpecs.get(tag);
  if (spec === undefined) {
    spec = {
      type: tag.type,
      byteOrder: tag.byteOrder,
      stringByteOrder: tag.stringByteOrder,
      scale: tag.scale,
      offset: tag.offset,
      ...(tag.length === undefined ? {} : { length: tag.length }),
      ...(tag.address.bit === undefined ? {} : { bit: tag.address.bit }),
    };
    codecSpecs.set(tag, spec);
  }
  return spec;
}

/** Each resolved tag's codec spec, built at its first decode (not one per sample). */
const codecSpecs = new WeakMap<ResolvedModbusTag, CodecSpec>();

function isBitTable(table: ModbusTable): boolean {
  return table === "coil" || table === "discrete_input";
}

function isModbus(device: DeviceConfig): device is ModbusDeviceConfig {
  return device.protocol !== "opcua";
}

function limitsOf(device: ModbusDeviceConfig): PlanLimits {
  return {
    maxRegisters: device.max_registers_per_request,
    maxBits: device.max_bits_per_request,
    maxGap: device.max_gap,
  };
}

export interface ModbusDriverOptions {
  /** The driver (or the host's planner of one) of a device read on its own I/O thread. */
  threaded?: boolean;
  /** Carried over from an earlier driver of the device: transaction ids found not echoed. */
  learnedIds?: TransactionIdMode;
  /** Carried over: the retries counted so far (stats() is cumulative). */
  retries?: number;
}

export class ModbusDriver implements Driver {
  readonly id: string;
  private device: ModbusDeviceConfig;
  private resolved: readonly ResolvedModbusTag[];
  private groups: readonly Group[];
  private readonly limit: LimitFunction;
  private readonly units = new UnitHealth();
  /** What the device's register map taught on this connection. */
  private readonly facts: RegisterFacts;
  private retries = 0;
  private link: ModbusLink | undefined;
  private lostReason = "not connected";
  /** "ignore" once the device was found not to echo transaction ids. */
  private learnedIds: TransactionIdMode | undefined;
  /** Where readings already returned are said to be in doubt (the runner subscribes). */
  private emit: ((samples: TagSample[]) => void) | undefined;
  /** Requests answered in reads still in progress: the doubt that hit them since, if any. */
  private readonly answered = new Map<ReadRequest, { doubt?: string }>();
  /** Requests of tags on a missing register (or refused): asked alone, never probed again. */
  private readonly alone = new WeakSet<PlannedRead>();

  /** Whether this driver runs on the device's I/O thread (io-thread.ts, thread-choice.ts). */
  private readonly threaded: boolean;

  /** Validates and precomputes; throws an Error naming the tag when a tag cannot be planned. */
  constructor(device: ModbusDeviceConfig, options: ModbusDriverOptions = {}) {
    this.threaded = options.threaded ?? false;
    this.learnedIds = options.learnedIds;
    this.retries = options.retries ?? 0;
    this.id = device.id;
    this.device = device;
    this.facts = new RegisterFacts(device.address_base);
    const inFlight = device.protocol === "modbus-tcp" ? device.max_in_flight : 1;
    this.limit = pLimit(inFlight);
    const built = this.build(device);
    this.resolved = built.tags;
    this.groups = built.groups;
  }

  /** The device's tags, resolved (addresses parsed, types and byte orders defaulted). */
  get tags(): readonly ResolvedModbusTag[] {
    return this.resolved;
  }

  get connected(): boolean {
    return this.link?.isOpen ?? false;
  }

  pollGroups(): readonly ModbusGroup[] {
    return this.groups;
  }

  /** Whether the device's settings and polls ask for an I/O thread (thread-choice.ts). */
  get wantsIoThread(): boolean {
    return wantsIoThread(this.device, requestsPerSecond(this.groups));
  }

  stats(): DriverStats {
    return { retries: this.retries };
  }

  /** What the driver learned and counted, for the next I/O thread's driver (io-thread.ts). */
  get carried(): Pick<ModbusDriverOptions, "learnedIds" | "retries"> {
    return { retries: this.retries, ...(this.learnedIds ? { learnedIds: this.learnedIds } : {}) };
  }

  async connect(ctx: DriverContext): Promise<void> {
    await this.close();
    this.link = await openLink(this.device, {
      log: ctx.log,
      signal: ctx.signal,
      ...(this.learnedIds ? { transactionIds: this.learnedIds } : {}),
      onNoEcho: () => {
        this.learnedIds = "ignore";
      },
    });
    this.units.reset();
    // the device may have come back with another map: learn it again
    this.facts.reset();
    this.replan();
    this.link.onDoubt((requests, reason) => this.inDoubt(requests, reason));
    this.link.onClose((reason) => {
      this.lostReason = `not connected: ${reason}`;
      // closing it ourselves (stop, reload) is routine; the device closing it is worth a warning
      if (reason === "closed by the gateway") ctx.log.debug({ reason }, "Modbus link closed");
      else ctx.log.warn({ reason }, "Modbus link closed");
    });
  }

  /**
   * A new tag map (or read settings) on the live connection: re-plans and resolves true.
   * Resolves false, touching nothing, when a connection setting changed or a tag cannot be
   * planned (the runner then replaces the driver, whose constructor says why).
   */
  async updateTags(next: DeviceConfig, ctx: DriverContext): Promise<boolean> {
    if (!isModbus(next) || next.id !== this.id) return false;
    const setting = connectionChange(this.device, next);
    if (setting !== undefined) {
      ctx.log.debug({ setting }, "Modbus config change needs a new connection");
      return false;
    }
    let built: { tags: ResolvedModbusTag[]; groups: Group[] };
    try {
      // what the map taught stays: a tag asked alone that now answers is merged again
      built = this.build(next);
      // a refusal belongs to the tag definition it was learned for
      if (this.facts.forget(changedTags(this.resolved, built.tags))) built = this.build(next);
    } catch (err) {
      ctx.log.debug({ err }, "Modbus tag map cannot be applied on the live connection");
      return false;
    }
    // decided on a fresh plan, as createDriver decides (what this connection learned would
    // otherwise move a device over the threshold and back)
    if (new ModbusDriver(next).wantsIoThread !== this.threaded) {
      ctx.log.debug(
        { io_thread: !this.threaded },
        "Modbus config change moves the device to or from its own I/O thread",
      );
      return false;
    }
    this.device = next;
    this.facts.addressBase = next.address_base;
    this.resolved = built.tags;
    this.groups = built.groups;
    ctx.log.info(
      { tags: built.tags.length, requests: built.groups.reduce((n, g) => n + g.plan.length, 0) },
      "Modbus tag map applied on the live connection",
    );
    return true;
  }

  /** Takes the channel for samples that put readings already returned in doubt. */
  async subscribe(_ctx: DriverContext, onSamples: (samples: TagSample[]) => void): Promise<void> {
    this.emit = onSamples;
  }

  /** Reads a poll group, a list of tag names, or every tag. */
  async read(ctx: DriverContext, group?: PollGroup): Promise<TagSample[]> {
    const defs = this.resolved;
    const plan = this.planFor(group);
    try {
      const results = await Promise.all(
        plan.map((req) => this.limit(() => this.readOne(req, ctx))),
      );
      const samples = plan.flatMap((req, i) => {
        const doubt = this.answered.get(req)?.doubt;
        return doubt === undefined ? results[i]! : this.doubtful(req, doubt);
      });
      if (defs === this.resolved) return samples;
      // the tag map changed while this read was on the wire (updateTags): a tag whose
      // definition changed was read and decoded by the old one, so its sample is dropped
      const changed = changedTags(defs, this.resolved);
      return samples.filter((s) => !changed.has(s.tag));
    } finally {
      for (const req of plan) this.answered.delete(req);
    }
  }

  /** Raw words (or 0/1 bits) of one range, for commissioning; throws on failure. */
  async readRaw(request: ReadRequest, signal?: AbortSignal): Promise<number[]> {
    if (!this.link) throw new Error("not connected");
    return this.limit(() => this.link!.read(request, this.device.request_timeout, signal));
  }

  /**
   * The requests each poll sends now, and what the device's map taught (holes, a smaller
   * request size, with the option that pins it): for people (`plc2mqtt read`).
   */
  describePlan(): string[] {
    const base = this.device.address_base;
    const at = (table: ModbusTable, offset: number) => formatModbusAddress({ table, offset }, base);
    const lines: string[] = [];
    for (const group of this.groups) {
      // a step of spread_requests: where in the interval its requests go out
      const step = group.phase ? ` at +${formatDuration(group.phase)}` : "";
      const every = `${formatDuration(group.interval)}${step}`;
      for (const req of group.plan) {
        const names = req.tags.map((t) => t.name).join(", ");
        const alone = this.alone.has(req) ? " (asked alone: missing)" : "";
        lines.push(
          `unit ${req.unitId} ${at(req.table, req.start)}+${req.count} every ${every}: ${names}${alone}`,
        );
      }
    }
    return [...lines, ...this.facts.describe()];
  }

  async close(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    await link?.close();
  }

  /** Resolves and plans a device's tags by poll interval; throws when a tag cannot be. */
  private build(device: ModbusDeviceConfig): { tags: ResolvedModbusTag[]; groups: Group[] } {
    const tags = device.tags.map((tag) => resolveModbusTag(device, tag));
    const byInterval = new Map<number, ResolvedModbusTag[]>();
    for (const tag of tags) {
      const list = byInterval.get(tag.pollInterval) ?? [];
      list.push(tag);
      byInterval.set(tag.pollInterval, list);
    }
    const groups = [...byInterval].flatMap(([interval, members]) => {
      const group = { interval, tags: members.map((t) => t.name), members };
      const plan = this.plan(members, device);
      const steps = stepsOf(device.spread_requests, {
        interval,
        tags: members.length,
        requests: plan.length,
      });
      return steps < 2 || plan.length < 2 ? [{ ...group, plan }] : spread(group, plan, steps);
    });
    return { tags, groups };
  }

  /**
   * Plans the tags around what the device's map taught; a tag on a missing register (or one
   * the device refused) gets a request of its own, shared only with tags on the same registers.
   */
  private plan(
    tags: readonly ResolvedModbusTag[],
    device: ModbusDeviceConfig = this.device,
  ): PlannedRead[] {
    const isAlone = (tag: ResolvedModbusTag) => this.facts.missing(tag) !== undefined;
    const { plan, alone } = planAround(tags, limitsOf(device), this.facts, isAlone);
    for (const req of alone) this.alone.add(req);
    return plan;
  }

  /** Plans every group again around what was learned (reads in progress keep their plan). */
  private replan(): void {
    for (const group of this.groups) group.plan = this.plan(group.members);
  }

  private planFor(group: PollGroup | undefined): readonly PlannedRead[] {
    if (group === undefined) return this.groups.flatMap((g) => g.plan);
    const own = this.groups.find((g) => g === group);
    if (own) return own.plan;
    const wanted = new Set(group.tags);
    return this.plan(this.resolved.filter((t) => wanted.has(t.name)));
  }

  private async readOne(req: PlannedRead, ctx: DriverContext): Promise<TagSample[]> {
    const skipped = this.units.skipReason(req.unitId, Date.now());
    if (skipped) return this.bad(req, skipped, "MODBUS_TIMEOUT");
    if (!this.link?.isOpen) return this.bad(req, this.lostReason, "MODBUS_DISCONNECTED");
    const outcome = await this.send(req, ctx);
    if (outcome.ok) {
      this.answered.set(req, {});
      if (this.alone.has(req)) this.answersAgain(req, ctx);
      return this.decode(req, outcome.words);
    }
    if (refusedByMap(outcome)) {
      // known missing: bad with what was learned, no new probe
      if (this.alone.has(req)) return this.missingSamples(req.tags);
      return this.resolveRefusal(req, outcome, ctx);
    }
    ctx.log.debug(
      { unit: req.unitId, start: req.start, reason: outcome.reason },
      "Modbus read failed",
    );
    return this.bad(req, outcome.reason, outcome.code);
  }

  /** One request, sent again after a transient answer; throws only on abort. */
  private async send(req: ReadRequest, ctx: DriverContext): Promise<ReadOutcome> {
    const link = this.link;
    if (!link?.isOpen) return { ok: false, reason: this.lostReason, code: "MODBUS_DISCONNECTED" };
    // A timeout counts toward the unit's skip only when its request was sent after the unit's
    // last timeout: requests left unanswered together are one silence, and so is a request
    // sent again after its own timeout (it carries its first sending's time). A unit that
    // answers other requests between polls is never skipped for one register it ignores; a
    // dead unit is skipped at its next poll's timeout.
    const sentAt = Date.now();
    const attempt = async (): Promise<number[]> => {
      try {
        const words = await link.read(req, this.device.request_timeout, ctx.signal);
        this.units.succeeded(req.unitId);
        return words;
      } catch (err) {
        // exception 0x0B: a gateway's target device did not answer, a timeout behind the gateway
        if (
          isGatewayError(err, "MODBUS_TIMEOUT") ||
          failureOf(err).exception === GATEWAY_NO_ANSWER
        ) {
          this.units.timedOut(req.unitId, Date.now(), sentAt);
        }
        throw err;
      }
    };
    return withRetries(attempt, {
      retries: this.device.transient_retries,
      signal: ctx.signal,
      mayRetry: () => link.isOpen && this.units.skipReason(req.unitId, Date.now()) === undefined,
      onRetry: (failure) => {
        this.retries += 1;
        ctx.log.debug(
          { unit: req.unitId, start: req.start, reason: failure.reason },
          "Modbus request sent again after a transient answer",
        );
      },
    });
  }

  /**
   * A read refused with exception 2 or 3: split it until the parts answer, learn the holes or
   * the size, plan every group again, and return this read's samples from the parts.
   */
  private async resolveRefusal(
    req: PlannedRead,
    failure: ReadFailure,
    ctx: DriverContext,
  ): Promise<TagSample[]> {
    const sent: ReadRequest[] = [];
    const link = this.link;
    try {
      const result = await probeRefusedRead(req, failure, {
        read: async (part) => {
          const outcome = await this.send(part, ctx);
          if (outcome.ok) {
            this.answered.set(part, {});
            sent.push(part);
          }
          return outcome;
        },
        limits: limitsOf(this.device),
        facts: this.facts,
      });
      if (this.link !== link) {
        // the connection was replaced meanwhile (facts reset at connect): what this probe
        // learned belongs to the old one, so it is not kept; the next poll asks again
        return this.bad(req, this.lostReason, "MODBUS_DISCONNECTED");
      }
      const peer = this.link?.peer ?? "the device";
      this.facts.addHoles(
        req.unitId,
        req.table,
        result.holes,
        { read: describeRequest(req, peer), tags: req.tags.map((t) => t.name) },
        ctx.log,
      );
      for (const { req: single, failure: refused } of result.refused) {
        for (const tag of single.tags) {
          if (this.facts.missing(tag) !== undefined) continue;
          const reason = `${refused.reason}, though each of its registers answers alone: asked alone from now on`;
          this.facts.refuse(tag, reason, ctx.log);
        }
      }
      if (result.size) {
        const { size, refused } = result.size;
        this.facts.learnSize(req.unitId, req.table, size, refused, ctx.log);
      }
      this.replan();
      return [
        ...result.answered.flatMap(({ req: part, words }) => {
          const doubt = this.answered.get(part)?.doubt;
          return doubt === undefined ? this.decode(part, words) : this.doubtful(part, doubt);
        }),
        ...result.failed.flatMap(({ req: part, failure: f }) => this.bad(part, f.reason, f.code)),
        ...this.missingSamples(result.refused.flatMap((r) => r.req.tags)),
      ];
    } finally {
      for (const part of sent) this.answered.delete(part);
    }
  }

  /** A tag asked alone because its register was missing answered: merge it again. */
  private answersAgain(req: PlannedRead, ctx: DriverContext): void {
    this.facts.answered(req, ctx.log);
    this.replan();
  }

  /**
   * Readings a frame nobody asked for put in doubt: a read in progress returns them bad; the
   * ones already returned are followed now by a bad sample per tag.
   */
  private inDoubt(requests: readonly ReadRequest[], reason: string): void {
    const samples: TagSample[] = [];
    for (const req of requests) {
      const answered = this.answered.get(req);
      if (answered) answered.doubt = reason;
      // a raw read (commissioning) carries no tags: its caller has the words already
      if ("tags" in req) samples.push(...this.doubtful(req as PlannedRead, reason));
    }
    if (samples.length === 0) return;
    this.emit?.(samples);
  }

  private doubtful(req: PlannedRead, reason: string): TagSample[] {
    return this.bad(
      req,
      `reply in doubt: a frame nobody asked for came on the line (${reason}); the value may have been another request's`,
      "MODBUS_REPLY_IN_DOUBT",
    );
  }

  private decode(req: PlannedRead, words: readonly number[]): TagSample[] {
    const readTime = Date.now();
    return req.tags.map((tag) => {
      const from = tag.address.offset - req.start;
      const raw = words.slice(from, from + tag.span);
      const base = { device: this.id, tag: tag.name, readTime, raw };
      try {
        const value = isBitTable(req.table) ? raw[0] === 1 : decodeRegisters(raw, codecSpecOf(tag));
        return { ...base, value, quality: "good" as const };
      } catch (err) {
        const reason = `decode ${tag.type} failed: ${err instanceof Error ? err.message : String(err)}`;
        return { ...base, value: null, quality: "bad" as const, reason, reasonCode: "MODBUS_READ" };
      }
    });
  }

  /** Tags on a missing register (or refused): bad with what was learned. */
  private missingSamples(tags: readonly ResolvedModbusTag[]): TagSample[] {
    const readTime = Date.now();
    return tags.map((tag) => ({
      device: this.id,
      tag: tag.name,
      value: null,
      quality: "bad" as const,
      reason: this.facts.missing(tag) ?? "register does not exist",
      reasonCode: "MODBUS_EXCEPTION",
      readTime,
    }));
  }

  private bad(req: PlannedRead, reason: string, reasonCode: ErrorCode): TagSample[] {
    const readTime = Date.now();
    return req.tags.map((tag) => ({
      device: this.id,
      tag: tag.name,
      value: null,
      quality: "bad" as const,
      reason,
      reasonCode,
      readTime,
    }));
  }
}
