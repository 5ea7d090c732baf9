/**
 * How `plc2mqtt events` prints records: `--format table|json|csv`.
 *
 * - table: time, sequence, type, device/subject, a one-line summary of the data (a state or
 *   quality change as old -> new, as the demo prints it; an alarm raised or cleared; a trigger's
 *   snapshot as tag=value pairs), and published / pending / set aside.
 * - json: the stored CloudEvents documents, exactly as published, one a line.
 * - csv (RFC 4180, CRLF line ends, a header first, for a spreadsheet): the fixed columns
 *   sequence, time, type, device, subject, then one column per data key found in the records
 *   printed: the plain keys sorted, then the context tags as `context.<tag>` and a trigger's
 *   snapshot tags as `snapshot.<tag>`, each group sorted. A data key named like a fixed column
 *   is `data.<key>`. Strings as they are, numbers and true/false as JSON writes them, `null`
 *   for a JSON null, an empty cell where the event has no such key, objects and arrays as JSON
 *   text. A cell holding a comma, a double quote, CR or LF is quoted, its quotes doubled. A
 *   record whose payload is not JSON has only the fixed columns.
 */
import type { JournalRecord } from "../../journal/index.ts";
import { columnWidths, formatRow, formatTable } from "../format-table.ts";

export const FORMATS = ["table", "json", "csv"] as const;
export type Format = (typeof FORMATS)[number];

const TABLE_HEADER = ["time", "sequence", "type", "device/subject", "data", "status"];

function tableRow(r: JournalRecord): string[] {
  return [
    new Date(r.time).toISOString(),
    String(r.sequence),
    r.type,
    `${r.device}/${r.subject}`,
    summarize(r.payload),
    status(r),
  ];
}

export function eventsTable(records: readonly JournalRecord[]): string {
  return formatTable(TABLE_HEADER, records.map(tableRow));
}

/** For --follow: the table of the records there, and a printer of later rows in its columns. */
export function followTable(records: readonly JournalRecord[]): {
  text: string;
  more(records: readonly JournalRecord[]): string;
} {
  const rows = records.map(tableRow);
  const widths = columnWidths(TABLE_HEADER, rows);
  return {
    text: `${formatTable(TABLE_HEADER, rows)}\n`,
    more: (later) => later.map((r) => `${formatRow(tableRow(r), widths)}\n`).join(""),
  };
}

function status(r: JournalRecord): string {
  if (r.setAside) return `set aside: ${r.setAside.reason}`;
  return r.published ? "published" : "pending";
}

const SUMMARY_MAX = 60;

/** A one-line summary of an event's data: the fields people look for first, else compact JSON. */
export function summarize(payload: string): string {
  let data: unknown;
  try {
    data = (JSON.parse(payload) as { data?: unknown }).data;
  } catch {
    return "(not JSON)";
  }
  if (typeof data !== "object" || data === null) return "";
  const d = data as Record<string, unknown>;
  const show = (v: unknown) => JSON.stringify(v) ?? "";
  let text: string;
  // old -> new, as the demo prints it (`-` for none)
  const was = (v: unknown) => (v === null || v === undefined ? "-" : String(v));
  const pairs = (o: unknown) =>
    typeof o === "object" && o !== null
      ? Object.entries(o)
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : show(v)}`)
          .join(" ")
      : "";
  if ("state" in d) text = `${was(d.previous_state)} -> ${was(d.state)}`;
  else if ("trigger" in d && "snapshot" in d) text = pairs(d.snapshot) || `${show(d.value)}`;
  else if ("alarm" in d && "active" in d) text = d.active === true ? "raised" : "cleared";
  else if ("value" in d)
    text = `${show(d.value)} (${String(d.quality ?? "")}, ${String(d.reason ?? "")})`;
  else if ("quality" in d) text = `${was(d.previous_quality)} -> ${was(d.quality)}`;
  else if ("status" in d) text = `${String(d.status)}${d.error ? `: ${String(d.error)}` : ""}`;
  else {
    const { context: _, ...rest } = d; // the context is in every event of the device: noise here
    text = JSON.stringify(rest);
  }
  return text.length > SUMMARY_MAX ? `${text.slice(0, SUMMARY_MAX - 1)}…` : text;
}

export function eventsJson(records: readonly JournalRecord[]): string {
  return records.map((r) => `${r.payload}\n`).join("");
}

const FIXED = ["sequence", "time", "type", "device", "subject"];
const FLATTENED = ["context", "snapshot"];

/** The data of a record as csv cells by column name. */
function dataCells(payload: string): Map<string, string> {
  const cells = new Map<string, string>();
  let data: unknown;
  try {
    data = (JSON.parse(payload) as { data?: unknown }).data;
  } catch {
    return cells;
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) return cells;
  for (const [key, value] of Object.entries(data)) {
    if (FLATTENED.includes(key) && typeof value === "object" && value !== null) {
      if (!Array.isArray(value)) {
        for (const [tag, v] of Object.entries(value)) cells.set(`${key}.${tag}`, cell(v));
        continue;
      }
    }
    cells.set(FIXED.includes(key) ? `data.${key}` : key, cell(value));
  }
  return cells;
}

function cell(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function group(column: string): number {
  if (column.startsWith("context.")) return 1;
  if (column.startsWith("snapshot.")) return 2;
  return 0;
}

/** RFC 4180 quoting: only where a cell needs it. */
function quote(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function eventsCsv(records: readonly JournalRecord[]): string {
  const rows = records.map((r) => ({ r, cells: dataCells(r.payload) }));
  const keys = [...new Set(rows.flatMap((row) => [...row.cells.keys()]))].sort(
    (a, b) => group(a) - group(b) || (a < b ? -1 : a > b ? 1 : 0),
  );
  const lines = [[...FIXED, ...keys].map(quote).join(",")];
  for (const { r, cells } of rows) {
    const fixed = [String(r.sequence), new Date(r.time).toISOString(), r.type, r.device, r.subject];
    lines.push([...fixed, ...keys.map((k) => cells.get(k) ?? "")].map(quote).join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}
