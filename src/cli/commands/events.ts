/**
 * `plc2mqtt events`: queries the journal, read-only, while the daemon runs or when it is
 * stopped. A table for people, the stored CloudEvents documents as JSON lines with --json.
 *
 * Which events: those matching every filter given; TIME is ISO 8601 (`2025-03-01T06:00:00Z`;
 * without a zone it is local time) or relative to now (`-30m`, `-1h`, `-7d`). When more match
 * than --limit: with --from, the first ones from there; otherwise the latest ones. Either way
 * printed in sequence order, with a note on stderr saying how many matched.
 *
 * A state or quality change shows old -> new, as the demo does. When nothing matches, each
 * of --type, --device and --tag that matches nothing in the journal gets a hint (events-hints.ts).
 *
 * --set-aside lists the events set aside (the broker refused them for good; they are kept,
 * not published), each with the broker's reason in the status column.
 *
 * The time parser and the filter options are shared with `plc2mqtt replay`.
 */
import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import { type JournalRecord, openJournalReader, type ReaderQuery } from "../../journal/index.ts";
import { GatewayError } from "../../lib/errors.ts";
import { formatTable } from "../format-table.ts";
import { noMatchHints } from "./events-hints.ts";

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** TIME as ms since the epoch: ISO 8601, `now`, or `-<n><ms|s|m|h|d|w>` (now minus). */
export function parseTime(text: string, option: string, now: number = Date.now()): number {
  const trimmed = text.trim();
  if (trimmed === "now") return now;
  const relative = /^-(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(trimmed);
  if (relative) return now - Number(relative[1]) * UNIT_MS[relative[2]!]!;
  const at = /^\d{4}-\d{2}-\d{2}/.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  if (Number.isNaN(at)) {
    throw new GatewayError(
      "USAGE",
      `${option} ${JSON.stringify(text)} is not a time: use ISO 8601 (2025-03-01T06:00:00Z) or now minus a duration (-30m, -1h, -7d)`,
    );
  }
  return at;
}

export interface FilterOptions {
  config: string;
  device?: string;
  tag?: string;
  type?: string;
  from?: string;
  to?: string;
}

/** Adds -c and the filters both commands take. */
export function addFilterOptions(command: Command, fromRequired = false): Command {
  command
    .requiredOption(
      "-c, --config <file>",
      "gateway config (YAML): the journal is in gateway.data_dir",
    )
    .option("--device <id>", "only events of this device")
    .option("--tag <name>", "only events of this tag or trigger (the event's subject)")
    .option("--type <type>", "only events of this type (e.g. plc2mqtt.state.changed)");
  const from = "events at or after TIME: ISO 8601 or now minus a duration (-30m, -1h, -7d)";
  if (fromRequired) command.requiredOption("--from <time>", from);
  else command.option("--from <time>", from);
  return command.option("--to <time>", "events at or before TIME (same forms as --from)");
}

/** The filters as a journal query (times resolved against one `now`). */
export function filterQuery(options: FilterOptions, now: number = Date.now()): ReaderQuery {
  const query: ReaderQuery = {};
  if (options.device !== undefined) query.device = options.device;
  if (options.tag !== undefined) query.subject = options.tag;
  if (options.type !== undefined) query.type = options.type;
  if (options.from !== undefined) query.from = parseTime(options.from, "--from", now);
  if (options.to !== undefined) query.to = parseTime(options.to, "--to", now);
  if (query.from !== undefined && query.to !== undefined && query.from > query.to) {
    throw new GatewayError("USAGE", "--from is after --to: no event can match");
  }
  return query;
}

interface EventsOptions extends FilterOptions {
  limit: string;
  pending?: boolean;
  setAside?: boolean;
  json?: boolean;
}

export function registerEvents(program: Command): void {
  const command = program
    .command("events")
    .description(
      "query the journal (read-only; works while the gateway runs): a table, or the stored CloudEvents documents with --json",
    );
  addFilterOptions(command)
    .option("--limit <n>", "at most this many events (the latest, or the first from --from)", "100")
    .option("--pending", "only events not yet acknowledged by the broker")
    .option(
      "--set-aside",
      "only events set aside: refused by the broker for good, kept and not published (with the reason)",
    )
    .option("--json", "print the stored CloudEvents documents, one JSON object a line")
    .action(async (options: EventsOptions) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000_000) {
        throw new GatewayError("USAGE", "--limit must be a whole number from 1 to 10000000");
      }
      const { config } = await loadConfig(options.config, process.env);
      const query = filterQuery(options);
      if (options.pending && options.setAside)
        throw new GatewayError("USAGE", "--pending and --set-aside exclude each other");
      if (options.pending) query.status = "pending";
      if (options.setAside) query.setAside = true;
      const reader = openJournalReader(config.gateway.data_dir);
      try {
        // Without --from the latest events are the interesting ones: read backwards, print forwards.
        const order = options.from === undefined ? "desc" : "asc";
        const records = reader.query({ ...query, limit, order });
        if (order === "desc") records.reverse();
        process.stdout.write(
          options.json
            ? records.map((r) => `${r.payload}\n`).join("")
            : records.length > 0
              ? `${eventsTable(records)}\n`
              : "",
        );
        const matched = records.length < limit ? records.length : reader.count(query);
        if (records.length === 0) {
          const hints = noMatchHints(reader, query).map((line) => `  ${line}\n`);
          process.stderr.write(`no events match in ${reader.path}\n${hints.join("")}`);
        } else if (matched > records.length) {
          const which = order === "desc" ? "latest" : "first";
          process.stderr.write(
            `showing the ${which} ${records.length} of ${matched} matching events (--limit)\n`,
          );
        }
        if (reader.corruptSkipped > 0) {
          process.stderr.write(`skipped ${reader.corruptSkipped} corrupt journal record(s)\n`);
        }
      } finally {
        reader.close();
      }
    });
}

function eventsTable(records: readonly JournalRecord[]): string {
  return formatTable(
    ["time", "sequence", "type", "device/subject", "data", "status"],
    records.map((r) => [
      new Date(r.time).toISOString(),
      String(r.sequence),
      r.type,
      `${r.device}/${r.subject}`,
      summarize(r.payload),
      status(r),
    ]),
  );
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
  if ("state" in d) text = `${was(d.previous_state)} -> ${was(d.state)}`;
  else if ("value" in d)
    text = `${show(d.value)} (${String(d.quality ?? "")}, ${String(d.reason ?? "")})`;
  else if ("quality" in d) text = `${was(d.previous_quality)} -> ${was(d.quality)}`;
  else if ("status" in d) text = `${String(d.status)}${d.error ? `: ${String(d.error)}` : ""}`;
  else text = JSON.stringify(d);
  return text.length > SUMMARY_MAX ? `${text.slice(0, SUMMARY_MAX - 1)}…` : text;
}
