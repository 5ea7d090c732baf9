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
 */
import pLimit, { type LimitFunction } from "p-limit";
import type { ModbusTable } from "../../config/modbus-address.ts";
import { type ResolvedModbusTag, resolveModbusTag } from "../../config/modbus-tags.ts";
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";
import { type ErrorCode, GatewayError, isGatewayError } from "../../lib/errors.ts";
import type { Driver, DriverContext, PollGroup, TagSample } from "../types.ts";
import { type CodecSpec, decodeRegisters } from "./codec.ts";
import { type ModbusLink, openLink, type ReadRequest, type TransactionIdMode } from "./link.ts";
import { type PlannedRead, planReads } from "./read-planner.ts";
import { UnitHealth } from "./unit-health.ts";

export interface ModbusGroup extends PollGroup {
  plan: readonly PlannedRead[];
}

export function codecSpecOf(tag: ResolvedModbusTag): CodecSpec {
  return {
    type: tag.type,
    byteOrder: tag.byteOrder,
    stringByteOrder: tag.stringByteOrder,
    scale: tag.scale,
    offset: tag.offset,
    ...(tag.length === undefined ? {} : { length: tag.length }),
    ...(tag.address.bit === undefined ? {} : { bit: tag.address.bit }),
  };
}

function isBitTable(table: ModbusTable): boolean {
  return table === "coil" || table === "discrete_input";
}

export class ModbusDriver implements Driver {
  readonly id: string;
  readonly tags: readonly ResolvedModbusTag[];
  private readonly device: ModbusDeviceConfig;
  private readonly groups: readonly ModbusGroup[];
  private readonly limit: LimitFunction;
  private readonly units = new UnitHealth();
  private link: ModbusLink | undefined;
  private lostReason = "not connected";
  /** "ignore" once the device was found not to echo transaction ids. */
  private learnedIds: TransactionIdMode | undefined;
  /** Where readings already returned are said to be in doubt (the runner subscribes). */
  private emit: ((samples: TagSample[]) => void) | undefined;
  /** Requests answered in reads still in progress: the doubt that hit them since, if any. */
  private readonly answered = new Map<ReadRequest, { doubt?: string }>();

  /** Validates and precomputes; throws an Error naming the tag when a tag cannot be planned. */
  constructor(device: ModbusDeviceConfig) {
    this.id = device.id;
    this.device = device;
    this.tags = device.tags.map((tag) => resolveModbusTag(device, tag));
    const inFlight = device.protocol === "modbus-tcp" ? device.max_in_flight : 1;
    this.limit = pLimit(inFlight);
    const byInterval = new Map<number, ResolvedModbusTag[]>();
    for (const tag of this.tags) {
      const list = byInterval.get(tag.pollInterval) ?? [];
      list.push(tag);
      byInterval.set(tag.pollInterval, list);
    }
    this.groups = [...byInterval].map(([interval, tags]) => ({
      interval,
      tags: tags.map((t) => t.name),
      plan: this.plan(tags),
    }));
  }

  get connected(): boolean {
    return this.link?.isOpen ?? false;
  }

  pollGroups(): readonly ModbusGroup[] {
    return this.groups;
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
    this.link.onDoubt((requests, reason) => this.inDoubt(requests, reason));
    this.link.onClose((reason) => {
      this.lostReason = `not connected: ${reason}`;
      // closing it ourselves (stop, reload) is routine; the device closing it is worth a warning
      if (reason === "closed by the gateway") ctx.log.debug({ reason }, "Modbus link closed");
      else ctx.log.warn({ reason }, "Modbus link closed");
    });
  }

  /** Takes the channel for samples that put readings already returned in doubt. */
  async subscribe(_ctx: DriverContext, onSamples: (samples: TagSample[]) => void): Promise<void> {
    this.emit = onSamples;
  }

  /** Reads a poll group, a list of tag names, or every tag. */
  async read(ctx: DriverContext, group?: PollGroup): Promise<TagSample[]> {
    const plan = this.planFor(group);
    try {
      const results = await Promise.all(
        plan.map((req) => this.limit(() => this.readOne(req, ctx))),
      );
      return plan.flatMap((req, i) => {
        const doubt = this.answered.get(req)?.doubt;
        return doubt === undefined ? results[i]! : this.doubtful(req, doubt);
      });
    } finally {
      for (const req of plan) this.answered.delete(req);
    }
  }

  /** Raw words (or 0/1 bits) of one range, for commissioning; throws on failure. */
  async readRaw(request: ReadRequest, signal?: AbortSignal): Promise<number[]> {
    if (!this.link) throw new Error("not connected");
    return this.limit(() => this.link!.read(request, this.device.request_timeout, signal));
  }

  async close(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    await link?.close();
  }

  private plan(tags: readonly ResolvedModbusTag[]): PlannedRead[] {
    return planReads(tags, {
      maxRegisters: this.device.max_registers_per_request,
      maxBits: this.device.max_bits_per_request,
      maxGap: this.device.max_gap,
    });
  }

  private planFor(group: PollGroup | undefined): readonly PlannedRead[] {
    if (group === undefined) return this.groups.flatMap((g) => g.plan);
    const own = this.groups.find((g) => g === group);
    if (own) return own.plan;
    const wanted = new Set(group.tags);
    return this.plan(this.tags.filter((t) => wanted.has(t.name)));
  }

  private async readOne(req: PlannedRead, ctx: DriverContext): Promise<TagSample[]> {
    const skipped = this.units.skipReason(req.unitId, Date.now());
    if (skipped) return this.bad(req, skipped, "MODBUS_TIMEOUT");
    if (!this.link?.isOpen) return this.bad(req, this.lostReason, "MODBUS_DISCONNECTED");
    const sentAt = Date.now();
    try {
      const words = await this.link.read(req, this.device.request_timeout, ctx.signal);
      this.answered.set(req, {});
      this.units.succeeded(req.unitId);
      return this.decode(req, words);
    } catch (err) {
      if (isGatewayError(err, "ABORTED")) throw err;
      if (isGatewayError(err, "MODBUS_TIMEOUT")) {
        this.units.timedOut(req.unitId, Date.now(), sentAt);
      }
      const reason = err instanceof Error ? err.message : String(err);
      ctx.log.debug({ unit: req.unitId, start: req.start, reason }, "Modbus read failed");
      return this.bad(req, reason, err instanceof GatewayError ? err.code : "MODBUS_READ");
    }
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
