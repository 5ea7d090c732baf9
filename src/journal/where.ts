/**
 * `--where KEY=VALUE` (issue 14): a filter on the values inside an event's `data`, in SQL, on
 * the journal as it is (no JSON index, no second write per event).
 *
 * Which value: a plain KEY (`batch_id`) is data.KEY, data.context.KEY (the device's context
 * tags) or data.snapshot.KEY (a trigger's snapshot): any of them matches. A KEY starting with
 * `data.`, `context.` or `snapshot.` names one of them only: `data.state`, `context.batch_id`,
 * `snapshot.good_count` (`data.context.K` and `data.snapshot.K` are the same as `context.K` and
 * `snapshot.K`). What follows the prefix is one key, dots included (tag names may hold dots).
 * Keys are identifiers as the config allows them (letters, digits, `_ . -`).
 *
 * How VALUE compares with the JSON value found there: a string matches when it is exactly
 * VALUE; a number when VALUE is a number equal to it (`count=42` matches 42 and `count=42.0`
 * too); true, false and null when VALUE is that word. Objects and arrays never match. So
 * `--where batch_id=42` matches both the string "42" and the number 42.
 *
 * How it is fast: each term is first an `instr` on the stored bytes for `"KEY":VALUE` as the
 * document holds it (cloudevent.ts and render-fast.ts write JSON without whitespace, strings and
 * numbers as JSON.stringify writes them: equal numbers have one spelling), which only rows that
 * may match pass (a VALUE that may be a string or a number: the row must hold `"KEY":` and the
 * number's text, which the string's holds too, `1042` for `"1042"`; or, when it does not, one
 * of the two spellings); then the exact test with SQLite's JSON functions on the paths above (SQLite
 * caches the parsed document across the calls of one row). Several terms are ANDed. A payload
 * that is not JSON never matches (and does not fail the query).
 */
import type { SQLInputValue } from "node:sqlite";
import { GatewayError } from "../lib/errors.ts";

export interface WhereTerm {
  /** The key as given (`batch_id`, `context.batch_id`). */
  key: string;
  value: string;
}

const KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const PREFIXES: Record<string, readonly string[]> = {
  "data.context.": ["context"],
  "data.snapshot.": ["snapshot"],
  "data.": [],
  "context.": ["context"],
  "snapshot.": ["snapshot"],
};

/** Parses `KEY=VALUE` (split at the first `=`); throws USAGE on a bad key. */
export function parseWhere(text: string): WhereTerm {
  const eq = text.indexOf("=");
  const key = eq < 0 ? "" : text.slice(0, eq).trim();
  if (eq < 0 || !KEY.test(key) || key.endsWith(".")) {
    throw new GatewayError(
      "USAGE",
      `--where ${JSON.stringify(text)} is not KEY=VALUE: KEY is a data key, a context tag or a snapshot tag (batch_id), or a path data.KEY, context.KEY or snapshot.KEY, of letters, digits, _, . and -`,
    );
  }
  return { key, value: text.slice(eq + 1) };
}

/** The JSON paths a key may name: each a list of object keys under the document's root. */
export function wherePaths(key: string): string[][] {
  for (const [prefix, under] of Object.entries(PREFIXES)) {
    if (key.startsWith(prefix) && key.length > prefix.length) {
      return [["data", ...under, key.slice(prefix.length)]];
    }
  }
  return [
    ["data", key],
    ["data", "context", key],
    ["data", "snapshot", key],
  ];
}

/** SQLite JSON path text, every key quoted: $."data"."context"."batch_id". */
function jsonPath(keys: readonly string[]): string {
  return `$${keys.map((k) => `.${JSON.stringify(k)}`).join("")}`;
}

/** The SQL condition of one term over the `payload` column, and its parameters. */
export function whereSql(term: WhereTerm): { sql: string; params: SQLInputValue[] } {
  const paths = wherePaths(term.key);
  const leaf = paths[0]!.at(-1)!;
  const value = term.value;
  const number = NUMBER.test(value.trim()) ? Number(value.trim()) : undefined;
  const literal = value === "true" || value === "false" || value === "null" ? value : undefined;
  const finite = number !== undefined && Number.isFinite(number);
  const name = `${JSON.stringify(leaf)}:`;
  const asString = JSON.stringify(value);
  const asNumber = finite ? JSON.stringify(number) : undefined;
  // what the document holds for a match, as it is written (a number: a prefix of it)
  const needles = [`${name}${asString}`];
  if (asNumber !== undefined) {
    // one text both spellings hold (`"order":"1042"` and `"order":1042` both hold 1042), or two
    if (asString.includes(asNumber)) needles[0] = asNumber;
    else needles.push(`${name}${asNumber}`);
  }
  if (literal !== undefined) needles.push(`${name}${literal}`);
  // Unless the one needle holds the key, the key is looked for first: a row without it (most
  // rows, for a snapshot tag) is read once; instr stops at the key's first occurrence.
  const key = needles.length > 1 || asNumber !== undefined ? [name] : [];
  const params: SQLInputValue[] = [...key, ...needles];
  const any = needles.map(() => "instr(payload, ?) > 0").join(" OR ");
  const pre = key.length > 0 ? `instr(payload, ?) > 0 AND (${any})` : any;
  const exact: string[] = [];
  for (const path of paths) {
    const p = jsonPath(path);
    exact.push("(json_type(payload, ?) = 'text' AND payload ->> ? = ?)");
    params.push(p, p, value);
    if (finite) {
      exact.push("(json_type(payload, ?) IN ('integer', 'real') AND payload ->> ? = ?)");
      params.push(p, p, number);
    }
    if (literal !== undefined) {
      exact.push("json_type(payload, ?) = ?");
      params.push(p, literal);
    }
  }
  // CASE: the JSON functions run only on rows the prefilter passed, and never on a payload
  // that is not JSON (a damaged row; the reader skips and counts it after its crc check)
  return {
    sql: `(CASE WHEN ${pre} THEN (CASE WHEN json_valid(payload) THEN ${exact.join(" OR ")} ELSE 0 END) ELSE 0 END)`,
    params,
  };
}
