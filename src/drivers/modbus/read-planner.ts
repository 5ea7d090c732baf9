/**
 * The read planner: which Modbus requests read a set of tags.
 *
 * Contract:
 * - A request never mixes unit ids or tables, and covers every register (or bit) of each of
 *   its tags: a tag is never split across requests.
 * - A request is at most `maxRegisters` registers (holding and input registers) or `maxBits`
 *   bits (coils and discrete inputs) long, and joins two neighbours only when the unused gap
 *   between them is at most `maxGap` registers (`maxGap * 16` bits for bit tables).
 * - Tags are taken in address order and each request grows while both limits hold, which
 *   gives the fewest requests for contiguous tags (N registers: ceil(N / maxRegisters)).
 *   Overlapping tags (HR100 uint32 and HR101 uint16, bits of one register) share a request.
 * - A tag wider than the limit on its own throws an Error naming the tag; the config checks
 *   report that earlier, with the YAML line.
 * - With facts learned from the device (issue 13 point 9, register-facts.ts): a request never
 *   spans a register (or bit) the device does not have, and is at most the smaller size the
 *   device was found to take for its unit id and table kind (a tag wider than that learned
 *   size is read alone). Tags on a missing register are the caller's to leave out.
 * - The output is sorted by unit id, table (function code order: coils, discrete inputs,
 *   holding registers, input registers) and start; each request's tags by address, bit, name.
 */
import { isRegisterTable, type ModbusTable } from "../../config/modbus-address.ts";
import type { ResolvedModbusTag } from "../../config/modbus-tags.ts";

export interface PlanLimits {
  /** Largest register read (125 by the protocol). */
  maxRegisters: number;
  /** Largest coil or discrete input read (2000 by the protocol). */
  maxBits: number;
  /** Unused registers a request may span to join two tags; x16 in bits for bit tables. */
  maxGap: number;
}

/** A set of addresses (a Set, or a Map keyed by address). */
export interface AddressSet {
  readonly size: number;
  has(address: number): boolean;
}

/** What was learned about the device's map (see register-facts.ts); absent: nothing. */
export interface PlanFacts {
  /** Addresses of this unit's table that do not exist: no request spans them. */
  holes(unitId: number, table: ModbusTable): AddressSet | undefined;
  /** A smaller request size this unit takes for this table's kind (registers or bits). */
  maxRequest(unitId: number, table: ModbusTable): number | undefined;
}

export interface PlannedRead {
  unitId: number;
  table: ModbusTable;
  /** The 0-based protocol address of the first register or bit. */
  start: number;
  /** Registers or bits to read. */
  count: number;
  tags: ResolvedModbusTag[];
}

const TABLE_ORDER: Record<ModbusTable, number> = {
  coil: 1,
  discrete_input: 2,
  holding_register: 3,
  input_register: 4,
};

export function planReads(
  tags: readonly ResolvedModbusTag[],
  limits: PlanLimits,
  facts?: PlanFacts,
): PlannedRead[] {
  checkLimits(limits);
  const sorted = [...tags].sort(compareTags);
  const plan: PlannedRead[] = [];
  let current: PlannedRead | undefined;
  for (const tag of sorted) {
    const { table } = tag.address;
    const registers = isRegisterTable(table);
    const limit = registers ? limits.maxRegisters : limits.maxBits;
    const learned = Math.min(limit, facts?.maxRequest(tag.unitId, table) ?? limit);
    const maxGap = registers ? limits.maxGap : limits.maxGap * 16;
    const start = tag.address.offset;
    const end = start + Math.max(1, tag.span);
    if (end - start > limit) {
      throw new Error(
        `tag ${tag.name} spans ${end - start} ${registers ? "registers" : "bits"}, more than the ${limit} one request may read`,
      );
    }
    if (
      current !== undefined &&
      current.unitId === tag.unitId &&
      current.table === table &&
      start - (current.start + current.count) <= maxGap &&
      Math.max(end, current.start + current.count) - current.start <= learned &&
      !spansHole(facts?.holes(tag.unitId, table), current.start + current.count, start)
    ) {
      current.count = Math.max(end, current.start + current.count) - current.start;
      current.tags.push(tag);
      continue;
    }
    current = {
      unitId: tag.unitId,
      table: tag.address.table,
      start,
      count: end - start,
      tags: [tag],
    };
    plan.push(current);
  }
  return plan;
}

/**
 * Plans tags around what was learned: a tag `isAlone` says (on a missing register, or one the
 * device refused) gets a request of its own, shared only with tags on the same registers, so
 * that its refusal never takes a neighbour down. Returns the whole plan, sorted as planReads
 * sorts, and those requests of their own.
 */
export function planAround(
  tags: readonly ResolvedModbusTag[],
  limits: PlanLimits,
  facts: PlanFacts,
  isAlone: (tag: ResolvedModbusTag) => boolean,
): { plan: PlannedRead[]; alone: PlannedRead[] } {
  const alone = new Map<string, PlannedRead>();
  const merged: ResolvedModbusTag[] = [];
  for (const tag of tags) {
    if (!isAlone(tag)) {
      merged.push(tag);
      continue;
    }
    const { table, offset } = tag.address;
    const count = Math.max(1, tag.span);
    const key = `${tag.unitId}/${table}/${offset}/${count}`;
    const req = alone.get(key) ?? { unitId: tag.unitId, table, start: offset, count, tags: [] };
    req.tags.push(tag);
    alone.set(key, req);
  }
  const plan = planReads(merged, limits, facts);
  if (alone.size === 0) return { plan, alone: [] };
  return { plan: sortReads([...plan, ...alone.values()]), alone: [...alone.values()] };
}

/** Sorts requests as planReads does: by unit id, table (function code order) and start. */
function sortReads(reads: PlannedRead[]): PlannedRead[] {
  return reads.sort(
    (a, b) =>
      a.unitId - b.unitId ||
      TABLE_ORDER[a.table] - TABLE_ORDER[b.table] ||
      a.start - b.start ||
      a.count - b.count,
  );
}

/** Whether [from, to) holds a missing address. */
function spansHole(holes: AddressSet | undefined, from: number, to: number): boolean {
  if (holes === undefined || holes.size === 0) return false;
  for (let a = from; a < to; a++) if (holes.has(a)) return true;
  return false;
}

function compareTags(a: ResolvedModbusTag, b: ResolvedModbusTag): number {
  return (
    a.unitId - b.unitId ||
    TABLE_ORDER[a.address.table] - TABLE_ORDER[b.address.table] ||
    a.address.offset - b.address.offset ||
    (a.address.bit ?? -1) - (b.address.bit ?? -1) ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
}

function checkLimits(limits: PlanLimits): void {
  for (const key of ["maxRegisters", "maxBits"] as const) {
    if (!Number.isInteger(limits[key]) || limits[key] < 1) {
      throw new Error(`read plan limit ${key} must be a positive integer, got ${limits[key]}`);
    }
  }
  if (!Number.isInteger(limits.maxGap) || limits.maxGap < 0) {
    throw new Error(`read plan limit maxGap must be an integer >= 0, got ${limits.maxGap}`);
  }
}
