/**
 * The public contract of the Modbus PLC simulator: what tests and the CLI may rely on.
 * Addresses are the tag-map notation ("C5", "DI12", "IR10", "HR100", "HR100.3"), 0-based.
 */

import type { CodecSpec } from "../../src/drivers/modbus/codec.ts";
import type { TagValue } from "../../src/events/sample.ts";

export type { CodecSpec, TagValue };

export type Framing = "tcp" | "rtu-over-tcp";
export type Transport = "tcp" | "rtu-over-tcp" | "serial";

export interface ModbusSimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * TCP port; 0 = a free port. Default 0, except with `serialPath`: then TCP is served only
   * when a port is given (serial only otherwise).
   */
  port?: number;
  /** MBAP (default) or RTU frames with CRC over TCP. */
  framing?: Framing;
  /** Serve RTU on this serial device or pty (instead of TCP, or also when `port` is given). */
  serialPath?: string;
  /** Default 19200. */
  serialBaudRate?: number;
  /** Unit ids that answer; default every unit id answers. */
  units?: number[];
  /** "packaging-line" or a path to a scenario YAML; default none. */
  scenario?: string;
  /** Scenario seed; same seed and same elapsed time give the same values. Default 1. */
  seed?: number;
  /** Advance the scenario in real time every tickMs; 0 or undefined = manual (advance()). */
  tickMs?: number;
  /** Keep every request in `requests` (default true); off for long runs, such as the CLI. */
  recordRequests?: boolean;
  /**
   * Addresses the device does not have ("HR101", "IR7", "C3", "DI12"; every unit id): a request
   * that touches one is answered with exception 2 (illegal data address), as many devices with
   * holes in their register map do.
   */
  holes?: readonly string[];
  /** Register reads longer than this are answered with exception 3 (default 125). */
  maxRegistersPerRequest?: number;
  /** Coil and discrete input reads longer than this are answered with exception 3 (2000). */
  maxBitsPerRequest?: number;
}

export interface RequestRecord {
  unitId: number;
  functionCode: number;
  /** Start address (the read address for function 23; 0 when the function is unknown). */
  address: number;
  /** Registers or bits (1 for functions 5 and 6; 0 when unknown). */
  quantity: number;
  transport: Transport;
  /** The MBAP transaction id (Modbus TCP only; RTU has none). */
  transactionId?: number;
}

/**
 * A request matches when every given field equals the request's; `address` matches when it
 * lies within the request's [address, address + quantity).
 */
export interface FaultMatch {
  unitId?: number;
  functionCode?: number;
  address?: number;
  /**
   * 0..1: a matching request is taken with this chance, drawn from the simulator's seeded
   * generator (same seed and requests, same faults). Default: every matching request.
   */
  probability?: number;
}

/** Milliseconds: a fixed time, or a [min, max] range drawn uniformly per request. */
export type Millis = number | readonly [number, number];

/**
 * How a device that does not echo MBAP transaction ids answers request id `t` (seen on some
 * devices and TCP-to-RTU converters): with 0, with t + 1, or with t's two bytes swapped.
 */
export type TransactionIdQuirk = "zero" | "plus-one" | "swapped";

export type MalformedKind =
  | "short-frame"
  | "wrong-transaction-id"
  | "byte-count-mismatch"
  | "oversized"
  | "stall-mid-frame"
  | "garbage";

/**
 * What a client must survive on a link without transaction ids (RTU): a reply that arrives
 * late, twice, in pieces, or when nobody asked. `delay`, `duplicate` and `torn` shape when the
 * bytes of a reply go out and combine with each other and with the actions (exception,
 * malformed); `inject` on the simulator sends a frame no request asked for.
 */
/** The kinds of fault counted in FaultControl.applied. */
export type AppliedFault =
  | "turnaround"
  | "delay"
  | "duplicate"
  | "torn"
  | "exception"
  | "silence"
  | "drop"
  | "malformed"
  | "transactionId"
  | "hold";

export interface FaultControl {
  /** How many requests each kind of fault was applied to, since the simulator started. */
  readonly applied: Readonly<Record<AppliedFault, number>>;
  /**
   * Answer matching requests `ms` late (other requests are answered at once). The late reply
   * carries the values at request time.
   */
  delay(ms: Millis, match?: FaultMatch): void;
  /**
   * The device's own answer time: every matching reply (copies follow it) waits this long
   * before it goes out, on top of any delay fault; a range gives a realistic spread (a PLC
   * that answers in 5-20 ms). One turnaround at a time: a second call replaces the first.
   */
  turnaround(ms: Millis, match?: FaultMatch): void;
  /**
   * Send the reply to matching requests twice: the copy `afterMs` after the first (0: back to
   * back, in the same write; "held": kept until the simulator's releaseHeld(), a copy as late
   * as a test needs with no clock involved). The most recently added matching duplicate fault
   * applies.
   */
  duplicate(afterMs: Millis | "held", match?: FaultMatch): void;
  /**
   * Send the reply to matching requests torn in two pieces (cut in the middle of the frame)
   * with `pauseMs` between them; a duplicate copy follows the last piece. The most recently
   * added matching torn fault applies.
   */
  torn(pauseMs: Millis, match?: FaultMatch): void;
  /** Answer matching requests with this exception code; writes are not applied. */
  exception(code: number, match?: FaultMatch): void;
  /** Never answer matching requests (the connection stays open); writes are not applied. */
  silence(match?: FaultMatch): void;
  /** Close the connection when a matching request arrives (serial: like silence). */
  drop(match?: FaultMatch): void;
  /** Answer matching requests with a malformed response of this kind. */
  malformed(kind: MalformedKind, match?: FaultMatch): void;
  /** MBAP only: answer matching requests under another transaction id (see the quirk). */
  transactionIds(quirk: TransactionIdQuirk, match?: FaultMatch): void;
  /**
   * Keep the replies to matching requests until the simulator's releaseHeld() (a reply as late
   * as a test needs, with no clock involved). clear() keeps what is already held.
   */
  hold(match?: FaultMatch): void;
  /** Remove every fault, the turnaround included. */
  clear(): void;
}

/** A read reply to send unasked (see ModbusSimulator.inject). */
export interface InjectedReply {
  unitId: number;
  functionCode: 1 | 2 | 3 | 4;
  /** Register words (3, 4) or bits as 0/1 (1, 2). */
  values: readonly number[];
  /** MBAP transaction id (Modbus TCP only); default 0. */
  transactionId?: number;
}

export interface ModbusSimulator {
  /** TCP port actually bound (0 if serial only). */
  readonly port: number;
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Every request received, in order of arrival. */
  readonly requests: readonly RequestRecord[];
  clearRequests(): void;
  setRegisters(unit: number, address: string, words: readonly number[]): void;
  getRegisters(unit: number, address: string, count: number): number[];
  /** Coils, discrete inputs and register bits (HRn.b, IRn.b). */
  setBit(unit: number, address: string, value: boolean): void;
  getBit(unit: number, address: string): boolean;
  /** Writes a typed value as the gateway would decode it with `spec`. */
  setValue(unit: number, address: string, value: TagValue, spec: CodecSpec): void;
  /** The scenario no longer changes the value that covers this address. */
  freeze(unit: number, address: string): void;
  /** Moves scenario time forward (manual mode; also allowed alongside real-time ticks). */
  advance(ms: number): void;
  readonly faults: FaultControl;
  /**
   * Sends a well-formed read reply that no request asked for (an unsolicited frame), on every
   * open link, each in its own framing (MBAP or RTU with CRC). Returns the links written to.
   */
  inject(reply: InjectedReply): number;
  /** Sends every reply held by a hold fault now, in the order they were held; returns how many. */
  releaseHeld(): number;
  /** Closes every open TCP connection now. */
  dropConnections(): void;
  /** Idempotent: closes sockets, timers and the serial port. */
  close(): Promise<void>;
}
