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
 */
import pLimit, { type LimitFunction } from "p-limit";
import type { ModbusTable } from "../../config/modbus-address.ts";
import { type ResolvedModbusTag, resolveModbusTag } from "../../config/modbus-tags.ts";
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";
import { isGatewayError } from "../../lib/errors.ts";
import type { Driver, DriverContext, PollGroup, TagSample } from "../types.ts";
import { type CodecSpec, decodeRegisters } from "./codec.ts";
import { type ModbusLink, openLink, type ReadRequest } from "./link.ts";
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
    this.link = await openLink(this.device, ctx.signal);
    this.units.reset();
    this.link.onClose((reason) => {
      this.lostReason = `not connected: ${reason}`;
      // closing it ourselves (stop, reload) is routine; the device closing it is worth a warning
      if (reason === "closed by the gateway") ctx.log.debug({ reason }, "Modbus link closed");
      else ctx.log.warn({ reason }, "Modbus link closed");
    });
  }

  /** Reads a poll group, a list of tag names, or every tag. */
  async read(ctx: DriverContext, group?: PollGroup): Promise<TagSample[]> {
    const plan = this.planFor(group);
    const results = await Promise.all(plan.map((req) => this.limit(() => this.readOne(req, ctx))));
    return results.flat();
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
    if (skipped) return this.bad(req, skipped);
    if (!this.link?.isOpen) return this.bad(req, this.lostReason);
    try {
      const words = await this.link.read(req, this.device.request_timeout, ctx.signal);
      this.units.succeeded(req.unitId);
      return this.decode(req, words);
    } catch (err) {
      if (isGatewayError(err, "ABORTED")) throw err;
      if (isGatewayError(err, "MODBUS_TIMEOUT")) this.units.timedOut(req.unitId, Date.now());
      const reason = err instanceof Error ? err.message : String(err);
      ctx.log.debug({ unit: req.unitId, start: req.start, reason }, "Modbus read failed");
      return this.bad(req, reason);
    }
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
        return { ...base, value: null, quality: "bad" as const, reason };
      }
    });
  }

  private bad(req: PlannedRead, reason: string): TagSample[] {
    const readTime = Date.now();
    return req.tags.map((tag) => ({
      device: this.id,
      tag: tag.name,
      value: null,
      quality: "bad" as const,
      reason,
      readTime,
    }));
  }
}
