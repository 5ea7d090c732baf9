/**
 * Finding out why the device refused a read (issue 13 point 9). Many devices have holes in
 * their register map and answer exception 2 (illegal data address) to any read that touches
 * one; others take fewer registers per request than the protocol's 125 and answer exception
 * 3 (illegal data value) to longer reads; some answer 3 to a hole, or 2 to a long read. A read
 * refused with exception 2 or 3 is split until the parts answer:
 *
 * - The request's tags are planned again with half its size (gaps allowed as configured), and
 *   each part is read; a part refused again is split the same way, down to single tags.
 * - The registers the request spanned that no part covers (the gaps between tags) are read one
 *   at a time: those refused are holes.
 * - A single tag (or tags sharing their registers) refused: its registers are read one at a
 *   time (up to 16); those refused are holes. When each answers alone, the tag itself is
 *   refused (the device will not read it in one request).
 * - When every part answered and every gap register answered, nothing is missing: the device
 *   refused the size. The largest part that answered is its limit.
 *
 * A part that fails otherwise (timeout, connection lost) keeps its own reason and rules out
 * conclusions about the request it belongs to. The tags of the refused request come back in
 * exactly one of: an answered part, a failed part, or a refused single (tags on holes among them).
 */
import type { ModbusTable } from "../../config/modbus-address.ts";
import type { ErrorCode } from "../../lib/errors.ts";
import { type PlanFacts, type PlanLimits, type PlannedRead, planReads } from "./read-planner.ts";
import type { ReadRequest } from "./request.ts";

export type ReadOutcome =
  | { ok: true; words: number[] }
  | { ok: false; reason: string; code: ErrorCode; exception?: number };

export type ReadFailure = Extract<ReadOutcome, { ok: false }>;

/** Exception 2 (illegal data address) or 3 (illegal data value): the map or the size. */
export function refusedByMap(outcome: ReadOutcome): boolean {
  return !outcome.ok && (outcome.exception === 2 || outcome.exception === 3);
}

export interface ProbeContext {
  /** Sends one request (with the retries of a transient answer); throws only on abort. */
  read(request: ReadRequest): Promise<ReadOutcome>;
  limits: PlanLimits;
  facts: PlanFacts;
}

export interface ProbeResult {
  answered: { req: PlannedRead; words: number[] }[];
  failed: { req: PlannedRead; failure: ReadFailure }[];
  /** Single tags refused: on a hole (see holes), or refused although each register answers. */
  refused: { req: PlannedRead; failure: ReadFailure; onHole: boolean }[];
  /** Missing addresses of the request's unit and table -> the exception code answered. */
  holes: Map<number, number>;
  /** Set when the device refused the size: the largest part that answered, and the refused. */
  size?: { size: number; refused: number };
}

/** Registers of a single refused tag read one at a time to find the missing one. */
const MAX_ALONE = 16;

export async function probeRefusedRead(
  req: PlannedRead,
  failure: ReadFailure,
  ctx: ProbeContext,
): Promise<ProbeResult> {
  const result: ProbeResult = { answered: [], failed: [], refused: [], holes: new Map() };
  await split(req, failure, ctx, result);
  return result;
}

async function split(
  req: PlannedRead,
  failure: ReadFailure,
  ctx: ProbeContext,
  out: ProbeResult,
): Promise<void> {
  const parts =
    req.tags.length > 1
      ? planReads(req.tags, ctx.limits, halved(ctx.facts, Math.ceil(req.count / 2)))
      : [];
  if (parts.length < 2) {
    await single(req, failure, ctx, out);
    return;
  }
  let allAnswered = true;
  for (const part of parts) {
    const outcome = await ctx.read(part);
    if (outcome.ok) {
      out.answered.push({ req: part, words: outcome.words });
      continue;
    }
    allAnswered = false;
    if (refusedByMap(outcome)) await split(part, outcome, ctx, out);
    else out.failed.push({ req: part, failure: outcome });
  }
  let gapsAnswered = true;
  for (const address of uncovered(req, parts)) {
    const outcome = await ctx.read(one(req, address));
    if (outcome.ok) continue;
    gapsAnswered = false;
    if (refusedByMap(outcome)) out.holes.set(address, outcome.exception!);
  }
  if (allAnswered && gapsAnswered) {
    const size = Math.max(...parts.map((p) => p.count));
    if (out.size === undefined || size < out.size.size) out.size = { size, refused: req.count };
  }
}

/** One tag, or tags on the same registers, refused: which of its registers is missing? */
async function single(
  req: PlannedRead,
  failure: ReadFailure,
  ctx: ProbeContext,
  out: ProbeResult,
): Promise<void> {
  if (req.count === 1) {
    out.holes.set(req.start, failure.exception!);
    out.refused.push({ req, failure, onHole: true });
    return;
  }
  let found = false;
  if (req.count <= MAX_ALONE) {
    for (let address = req.start; address < req.start + req.count; address++) {
      const outcome = await ctx.read(one(req, address));
      if (outcome.ok || !refusedByMap(outcome)) continue;
      out.holes.set(address, outcome.exception!);
      found = true;
    }
  }
  out.refused.push({ req, failure, onHole: found });
}

function one(req: PlannedRead, address: number): ReadRequest {
  return { unitId: req.unitId, table: req.table, start: address, count: 1 };
}

/** The addresses of `req` that none of its parts reads. */
function uncovered(req: PlannedRead, parts: readonly PlannedRead[]): number[] {
  const covered = new Set<number>();
  for (const part of parts) {
    for (let a = part.start; a < part.start + part.count; a++) covered.add(a);
  }
  const gaps: number[] = [];
  for (let a = req.start; a < req.start + req.count; a++) if (!covered.has(a)) gaps.push(a);
  return gaps;
}

function halved(facts: PlanFacts, size: number): PlanFacts {
  return {
    holes: (unitId: number, table: ModbusTable) => facts.holes(unitId, table),
    maxRequest: (unitId: number, table: ModbusTable) =>
      Math.min(size, facts.maxRequest(unitId, table) ?? size),
  };
}
