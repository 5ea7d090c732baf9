/**
 * What the Modbus driver learned about a device's register map on the current connection
 * (issue 13 point 9): addresses that do not exist (holes), tags the device refuses to read
 * although each of their registers answers, and a smaller request size than configured, per
 * unit id and table kind (registers, bits).
 *
 * Invariants:
 * - Facts are kept for the connection: forgotten at each connect (a device that comes back may
 *   have been restarted with another map), kept when the tag map changes on the live connection.
 *   A missing register that answers after all (asked alone, see driver.ts) is forgotten at once.
 * - A learned size only ever shrinks, and never goes above the configured one.
 * - Each fact is logged at warn the first time the driver learns it and at debug when it is
 *   learned again after a reconnect: one warning per missing address, not one per poll.
 */
import {
  type AddressBase,
  formatModbusAddress,
  isRegisterTable,
  type ModbusTable,
} from "../../config/modbus-address.ts";
import type { ResolvedModbusTag } from "../../config/modbus-tags.ts";
import type { Logger } from "../../lib/logger.ts";
import type { AddressSet, PlanFacts } from "./read-planner.ts";
import { exceptionName } from "./request.ts";

/** The config option that pins a learned size, by table kind. */
export const SIZE_OPTION = {
  registers: "max_registers_per_request",
  bits: "max_bits_per_request",
} as const;

type Kind = keyof typeof SIZE_OPTION;

const kindOf = (table: ModbusTable): Kind => (isRegisterTable(table) ? "registers" : "bits");

export class RegisterFacts implements PlanFacts {
  /** `${unit}/${table}` -> missing address -> the exception code the device answered. */
  #holes = new Map<string, Map<number, number>>();
  /** Tag name -> why the device refuses to read it. */
  #refused = new Map<string, string>();
  /** `${unit}/${kind}` -> the largest request the device answered when a larger one failed. */
  #sizes = new Map<string, { size: number; refused: number }>();
  /** What was already logged at warn, for the driver's life. */
  readonly #warned = new Set<string>();
  /** The device's address_base, for addresses in messages. */
  addressBase: AddressBase;

  constructor(addressBase: AddressBase) {
    this.addressBase = addressBase;
  }

  /** A new connection: the device may have another map now. */
  reset(): void {
    this.#holes.clear();
    this.#refused.clear();
    this.#sizes.clear();
  }

  holes(unitId: number, table: ModbusTable): AddressSet | undefined {
    return this.#holes.get(`${unitId}/${table}`);
  }

  maxRequest(unitId: number, table: ModbusTable): number | undefined {
    return this.#sizes.get(`${unitId}/${kindOf(table)}`)?.size;
  }

  /** Why this tag is asked alone (a register of it does not exist, or refused), or undefined. */
  missing(tag: ResolvedModbusTag): string | undefined {
    const refused = this.#refused.get(tag.name);
    if (refused !== undefined) return refused;
    const { table, offset } = tag.address;
    const holes = this.#holes.get(`${tag.unitId}/${table}`);
    if (holes === undefined) return undefined;
    const missing: string[] = [];
    let code = 2;
    for (let a = offset; a < offset + Math.max(1, tag.span); a++) {
      const answered = holes.get(a);
      if (answered === undefined) continue;
      missing.push(this.#name(table, a));
      code = answered;
    }
    if (missing.length === 0) return undefined;
    const verb = missing.length === 1 ? "does" : "do";
    return `${missing.join(", ")} ${verb} not exist on unit ${tag.unitId}: the device answers exception ${code} (${exceptionName(code)}) to any read of it; check the tag's address against the device's register map`;
  }

  /** Records missing addresses found by one probe; logs those not logged before, at once. */
  addHoles(
    unitId: number,
    table: ModbusTable,
    found: ReadonlyMap<number, number>,
    context: { read: string; tags: readonly string[] },
    log: Logger,
  ): void {
    if (found.size === 0) return;
    const key = `${unitId}/${table}`;
    const holes = this.#holes.get(key) ?? new Map<number, number>();
    for (const [address, code] of found) holes.set(address, code);
    this.#holes.set(key, holes);
    const addresses = [...found.keys()].sort((a, b) => a - b);
    const missing = addresses.map((a) => this.#name(table, a));
    const fresh = addresses.filter((a) => !this.#warned.has(`${key}/${a}`));
    for (const a of fresh) this.#warned.add(`${key}/${a}`);
    const fields = { unit: unitId, missing, failed_read: context.read, tags: context.tags };
    if (fresh.length > 0) {
      log.warn(fields, "Modbus registers do not exist: reads now go around them");
    } else {
      log.debug(fields, "Modbus registers do not exist: reads now go around them");
    }
  }

  /**
   * A request asked alone because its registers were missing (or its tags refused) answered:
   * the device has them now. Forgets those holes and refusals; logged once at info.
   */
  answered(
    req: {
      unitId: number;
      table: ModbusTable;
      start: number;
      count: number;
      tags: readonly ResolvedModbusTag[];
    },
    log: Logger,
  ): void {
    const holes = this.#holes.get(`${req.unitId}/${req.table}`);
    const found: string[] = [];
    for (let a = req.start; a < req.start + req.count; a++) {
      if (holes?.delete(a)) found.push(this.#name(req.table, a));
    }
    if (holes?.size === 0) this.#holes.delete(`${req.unitId}/${req.table}`);
    for (const tag of req.tags) this.#refused.delete(tag.name);
    log.info(
      { unit: req.unitId, answered: found, tags: req.tags.map((t) => t.name) },
      "Modbus registers answer again: read with their neighbours again",
    );
  }

  /**
   * Forgets the refusals of these tags (a reload changed or removed them: a new tag under the
   * same name is asked afresh). True when one was forgotten.
   */
  forget(names: ReadonlySet<string>): boolean {
    let forgot = false;
    for (const name of names) forgot = this.#refused.delete(name) || forgot;
    return forgot;
  }

  /** A tag whose registers each answer, but not together: it is read alone from now on. */
  refuse(tag: ResolvedModbusTag, reason: string, log: Logger): void {
    this.#refused.set(tag.name, reason);
    const warned = this.#warned.has(`tag/${tag.name}`);
    this.#warned.add(`tag/${tag.name}`);
    const fields = { unit: tag.unitId, tag: tag.name, reason };
    if (warned) log.debug(fields, "Modbus device refuses to read a tag");
    else log.warn(fields, "Modbus device refuses to read a tag");
  }

  /**
   * The device refused a request of `refused` registers (or bits) that answered when split
   * into requests of at most `size`: it takes fewer per request than configured.
   */
  learnSize(unitId: number, table: ModbusTable, size: number, refused: number, log: Logger): void {
    const kind = kindOf(table);
    const key = `${unitId}/${kind}`;
    const known = this.#sizes.get(key);
    if (known !== undefined && known.size <= size) return;
    this.#sizes.set(key, { size, refused });
    const option = SIZE_OPTION[kind];
    const fields = {
      unit: unitId,
      refused,
      learned: size,
      option,
      hint: `set ${option}: ${size} on this device to read in requests it takes from the start`,
    };
    if (this.#warned.has(`size/${key}/${size}`)) {
      log.debug(fields, "Modbus device takes smaller requests: learned its limit");
    } else {
      this.#warned.add(`size/${key}/${size}`);
      log.warn(fields, "Modbus device takes smaller requests: learned its limit");
    }
  }

  /** Lines for people (`plc2mqtt read`): what was learned, with the option that pins it. */
  describe(): string[] {
    const lines: string[] = [];
    for (const [key, { size, refused }] of this.#sizes) {
      const [unit, kind] = key.split("/") as [string, Kind];
      lines.push(
        `unit ${unit} refused a read of ${refused} ${kind}: reading at most ${size} per request (pin it with ${SIZE_OPTION[kind]}: ${size})`,
      );
    }
    for (const [key, holes] of this.#holes) {
      const [unit, table] = key.split("/") as [string, ModbusTable];
      const names = [...holes.keys()].sort((a, b) => a - b).map((a) => this.#name(table, a));
      lines.push(`unit ${unit}: ${names.join(", ")} do not exist: reads go around them`);
    }
    for (const [tag, reason] of this.#refused) lines.push(`tag ${tag} not read: ${reason}`);
    return lines;
  }

  #name(table: ModbusTable, offset: number): string {
    return formatModbusAddress({ table, offset }, this.addressBase);
  }
}
