/**
 * Rows of the `records` table and the JournalRecords they become. A row is only handed out
 * when every column has its type and the payload's crc32 matches: a row damaged on disk (or by
 * hand) is reported as corrupt instead, so a reader can skip and count it, never crash.
 */
import type { SQLInputValue } from "node:sqlite";
import { crc32 } from "node:zlib";
import type { JournalRecord, RenderedEvent } from "./types.ts";

export const RECORD_COLUMNS =
  "sequence, id, type, device, subject, time, topic, retain, payload, crc";

export type Row = Record<string, SQLInputValue>;

/** A record, or the sequence of a row that failed validation. */
export type Decoded = { ok: true; record: JournalRecord } | { ok: false; sequence: bigint | null };

export function payloadCrc(payload: string): number {
  return crc32(payload);
}

/** Validates a row read with readBigInts on and turns it into a JournalRecord. */
export function decodeRow(row: Row): Decoded {
  const { sequence, id, type, device, subject, time, topic, retain, payload, crc } = row;
  const seq = typeof sequence === "bigint" ? sequence : null;
  if (
    seq === null ||
    typeof id !== "string" ||
    typeof type !== "string" ||
    typeof device !== "string" ||
    typeof subject !== "string" ||
    (typeof time !== "bigint" && typeof time !== "number") ||
    typeof topic !== "string" ||
    typeof retain !== "bigint" ||
    typeof payload !== "string" ||
    typeof crc !== "bigint" ||
    Number(crc) !== payloadCrc(payload)
  ) {
    return { ok: false, sequence: seq };
  }
  const record: JournalRecord = {
    sequence: seq,
    id,
    type,
    device,
    subject,
    time: Number(time),
    topic,
    retain: retain !== 0n,
    payload,
  };
  return { ok: true, record };
}

/** The record an event becomes under its sequence and id. */
export function journalRecord(
  sequence: bigint,
  id: string,
  event: { type: string; device: string; subject: string; time: number },
  rendered: RenderedEvent,
): JournalRecord {
  return {
    sequence,
    id,
    type: event.type,
    device: event.device,
    subject: event.subject,
    time: event.time,
    topic: rendered.topic,
    retain: rendered.retain,
    payload: rendered.payload,
  };
}

/**
 * Appends a record's values, in the order of RECORD_COLUMNS (its payload's crc32 last: `crc`
 * when the caller has it, else computed), to `params`: one row of a multi-row INSERT's list.
 */
export function pushRecordValues(
  params: SQLInputValue[],
  record: JournalRecord,
  crc: number = payloadCrc(record.payload),
): void {
  params.push(
    record.sequence,
    record.id,
    record.type,
    record.device,
    record.subject,
    record.time,
    record.topic,
    record.retain ? 1 : 0,
    record.payload,
    crc,
  );
}

/** The parameters of one row of an INSERT: RECORD_COLUMNS, then the chain hash. */
export const INSERT_PARAMS_PER_ROW = RECORD_COLUMNS.split(",").length + 1;

/** An INSERT of pushRecordValues() plus the record's chain hash (chain.ts), the last parameter. */
export const INSERT_SQL = insertRowsSql(1);

/**
 * An INSERT of `rows` rows, each pushRecordValues() plus its chain hash: one statement call for
 * many rows costs about a fifth less per row than one call per row (node:sqlite binds each
 * call's arguments separately; measured in a group commit of 1,000 rows).
 */
export function insertRowsSql(rows: number): string {
  const one = `(${Array(INSERT_PARAMS_PER_ROW).fill("?").join(", ")})`;
  return `INSERT INTO records(${RECORD_COLUMNS}, hash) VALUES ${Array(rows).fill(one).join(", ")}`;
}

/**
 * Rewrites a record in place (Journal.replace): same sequence and id, every other column from
 * the new event. The caller checks that it is still pending (above its sink's cursor); the
 * statement changes nothing when it was deleted.
 */
export const REPLACE_SQL =
  "UPDATE records SET type = ?, device = ?, subject = ?, time = ?, topic = ?, retain = ?, payload = ?, crc = ? WHERE sequence = ? AND id = ?";

/** The values of one REPLACE_SQL, in its order. */
export function replaceValues(
  sequence: bigint,
  id: string,
  event: { type: string; device: string; subject: string; time: number },
  rendered: RenderedEvent,
): SQLInputValue[] {
  const values: SQLInputValue[] = [];
  pushRecordValues(values, journalRecord(sequence, id, event, rendered));
  return [...values.slice(2), sequence, id];
}

/** A rough upper bound of the bytes a row and its index entries take, for the size policy. */
export function estimateRowBytes(
  id: string,
  event: { type: string; device: string; subject: string },
  rendered: RenderedEvent,
): number {
  const keys = event.type.length + event.device.length + event.subject.length;
  return 64 + id.length + rendered.topic.length + rendered.payload.length * 1.05 + keys * 2 + 80;
}
