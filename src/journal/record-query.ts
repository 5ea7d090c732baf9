/**
 * The one SQL query of journal records, for both ways in: the daemon's Journal.query
 * (journal.ts; the set-aside list of /healthz) and the read-only reader other processes use
 * (reader.ts: `events`, `replay`). Issue 13 point 6: there was a second builder beside this
 * one; there is one now.
 *
 * Filters: device, subject (the tag or trigger), type, event time range (inclusive; the
 * records_time index serves it), set aside only, status (published or pending: at or below
 * the publisher's cursor, or above it; in a journal of user_version 1, by its publish marks),
 * sequences after or before a paging cursor, values inside the data (`--where`, where.ts).
 * Sequence order, asc or desc. Rows carry the
 * set-aside columns (set-aside.ts withSetAside) and, in a v1 journal, published_at.
 */
import type { SQLInputValue } from "node:sqlite";
import { RECORD_COLUMNS } from "./records.ts";
import { notSetAside, setAsideSource } from "./set-aside.ts";
import type { JournalQuery } from "./types.ts";
import { type WhereTerm, whereSql } from "./where.ts";

export interface RecordFilter extends JournalQuery {
  /** Only records the broker acknowledged, or only those still waiting; default both. */
  status?: "published" | "pending";
  /** Only records with a sequence above this (a paging cursor, in ascending order). */
  afterSequence?: bigint;
  /** Only records with a sequence below this (a paging cursor, in descending order). */
  beforeSequence?: bigint;
  /** Only records whose data holds each of these values (where.ts: `--where KEY=VALUE`). */
  where?: readonly WhereTerm[];
}

/** How a file says a record is done for the publisher: its cursor, or (v1) a publish mark. */
export type Done = { cursor: bigint } | { marks: true };

export interface QueryShape {
  /** Needed only for a status filter and for v1 files (whose rows then carry published_at). */
  done?: Done;
  /** Whether the file has the set_aside table (a file written before it existed has not). */
  hasSetAside: boolean;
}

interface Where {
  where: string;
  from: string;
  columns: string;
  params: SQLInputValue[];
}

function whereClause(query: RecordFilter, shape: QueryShape): Where {
  const { done, hasSetAside } = shape;
  const source = setAsideSource(query.setAside === true, hasSetAside);
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  const add = (sql: string, value: SQLInputValue | undefined) => {
    if (value === undefined) return;
    where.push(sql);
    params.push(value);
  };
  add("device = ?", query.device);
  add("subject = ?", query.subject);
  add("type = ?", query.type);
  add("time >= ?", query.from);
  add("time <= ?", query.to);
  add("sequence > ?", query.afterSequence);
  add("sequence < ?", query.beforeSequence);
  if (query.status !== undefined && done === undefined) {
    throw new Error("a status filter needs the publisher's cursor or the publish marks");
  }
  if (done !== undefined && "cursor" in done) {
    // a set-aside record is below the cursor too, and not published
    if (query.status === "published") {
      add("sequence <= ?", done.cursor);
      where.push(notSetAside(hasSetAside));
    }
    if (query.status === "pending") add("sequence > ?", done.cursor);
  } else if (done !== undefined) {
    // published_at 0 marks a row the daemon skipped as corrupt: neither published nor pending.
    if (query.status === "published") where.push("published_at > 0", notSetAside(hasSetAside));
    if (query.status === "pending") where.push("published_at IS NULL");
  }
  if (source.where !== undefined) where.push(source.where);
  // last: SQLite tests the terms in order, so the cheap column tests narrow the rows first
  for (const term of query.where ?? []) {
    const { sql, params: values } = whereSql(term);
    where.push(sql);
    params.push(...values);
  }
  return {
    where: where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "",
    from: source.from,
    columns: source.columns,
    params,
  };
}

/** The SELECT of matching records in sequence order; its last parameter is the limit (default 1000). */
export function selectRecords(
  query: RecordFilter,
  shape: QueryShape,
): { sql: string; params: SQLInputValue[] } {
  const { where, from, columns, params } = whereClause(query, shape);
  const order = query.order === "desc" ? "DESC" : "ASC";
  const marks = shape.done !== undefined && "marks" in shape.done ? ", published_at" : "";
  return {
    sql: `SELECT ${RECORD_COLUMNS}${marks}, ${columns} FROM ${from}${where} ORDER BY sequence ${order} LIMIT ?`,
    params: [...params, query.limit ?? 1000],
  };
}

/** The count of matching rows (`n`), and their lowest and highest sequence (`lo`, `hi`). */
export function countRecords(
  query: RecordFilter,
  shape: QueryShape,
): { sql: string; params: SQLInputValue[] } {
  const { where, from, params } = whereClause(query, shape);
  return {
    sql: `SELECT count(*) AS n, min(sequence) AS lo, max(sequence) AS hi FROM ${from}${where}`,
    params,
  };
}
