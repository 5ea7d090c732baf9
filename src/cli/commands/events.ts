/**
 * `plc2mqtt events`: queries the journal, read-only, while the daemon runs or when it is
 * stopped. `--format table` (default) for people, `json` (or --json) the stored CloudEvents
 * documents as JSON lines, `csv` for a spreadsheet (events-format.ts).
 *
 * Which events: those matching every filter given; TIME is ISO 8601 (`2025-03-01T06:00:00Z`;
 * without a zone it is local time) or relative to now (`-30m`, `-1h`, `-7d`). `--where
 * KEY=VALUE` (repeatable, all must hold) matches a value in the event's data, its context tags
 * or a trigger's snapshot (journal/where.ts): `--where batch_id=B-00042` is a batch's story.
 * When more match than --limit: with --from, the first ones from there; otherwise the latest
 * ones. Either way printed in sequence order, with a note on stderr saying how many matched.
 *
 * --follow then prints the matching events committed later, as they come, until SIGINT or
 * SIGTERM (exit 0; events-follow.ts). Not with csv (its columns come from the whole result),
 * --pending or --set-aside (those change for events already printed).
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
import {
  type JournalReader,
  type JournalRecord,
  openJournalReader,
  parseWhere,
  type ReaderQuery,
} from "../../journal/index.ts";
import { GatewayError } from "../../lib/errors.ts";
import { follow } from "./events-follow.ts";
import {
  eventsCsv,
  eventsJson,
  eventsTable,
  FORMATS,
  type Format,
  followTable,
} from "./events-format.ts";
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
  where?: string[];
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
    .option("--type <type>", "only events of this type (e.g. plc2mqtt.state.changed)")
    .option(
      "--where <key=value>",
      "only events whose data, context tags or trigger snapshot hold this value (batch_id=B-00042; data.KEY, context.KEY, snapshot.KEY for one of them); repeatable, all must hold",
      (value: string, previous: string[] = []) => [...previous, value],
    );
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
  if (options.where !== undefined && options.where.length > 0)
    query.where = options.where.map(parseWhere);
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
  format?: string;
  follow?: boolean;
}

export interface Selected {
  /** In sequence order. */
  records: JournalRecord[];
  /** How many match in all (more than records.length when --limit cut them). */
  matched: number;
  /** Which end --limit kept: the first from --from, else the latest. */
  which: "first" | "latest";
}

/** The records `events` prints: the first `limit` from --from, else the latest `limit`. */
export function selectEvents(
  reader: JournalReader,
  query: ReaderQuery,
  limit: number,
  fromGiven: boolean,
): Selected {
  // Without --from the latest events are the interesting ones: read backwards, print forwards.
  const order = fromGiven ? "asc" : "desc";
  const records = reader.query({ ...query, limit, order });
  if (order === "desc") records.reverse();
  let matched = records.length;
  if (records.length === limit) {
    // the rest are beyond the ones read: count only those (a --where reads each row once)
    const rest: ReaderQuery =
      order === "desc"
        ? { ...query, beforeSequence: records[0]!.sequence }
        : { ...query, afterSequence: records.at(-1)!.sequence };
    matched += reader.count(rest);
  }
  return { records, matched, which: fromGiven ? "first" : "latest" };
}

function checkOptions(options: EventsOptions): { limit: number; format: Format } {
  const limit = Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000_000) {
    throw new GatewayError("USAGE", "--limit must be a whole number from 1 to 10000000");
  }
  const format = (options.format ?? (options.json ? "json" : "table")) as Format;
  if (!FORMATS.includes(format))
    throw new GatewayError("USAGE", `--format must be one of ${FORMATS.join(", ")}`);
  if (options.json && format !== "json")
    throw new GatewayError("USAGE", "--json is --format json: give one of them");
  if (options.pending && options.setAside)
    throw new GatewayError("USAGE", "--pending and --set-aside exclude each other");
  if (options.follow && format === "csv")
    throw new GatewayError(
      "USAGE",
      "--follow cannot print csv (its columns come from the whole result): use --format json or table",
    );
  if (options.follow && (options.pending || options.setAside))
    throw new GatewayError(
      "USAGE",
      "--follow prints new events: it does not go with --pending or --set-aside",
    );
  return { limit, format };
}

export function registerEvents(program: Command): void {
  const command = program
    .command("events")
    .description(
      "query the journal (read-only; works while the gateway runs): a table, the stored CloudEvents documents (--format json) or csv; --follow for new events as they come",
    );
  addFilterOptions(command)
    .option("--limit <n>", "at most this many events (the latest, or the first from --from)", "100")
    .option("--pending", "only events not yet acknowledged by the broker")
    .option(
      "--set-aside",
      "only events set aside: refused by the broker for good, kept and not published (with the reason)",
    )
    .option(
      "--format <format>",
      "table, json (the stored CloudEvents documents, one a line) or csv (one column per data key)",
    )
    .option("--json", "the same as --format json")
    .option(
      "--follow",
      "then print matching events as they are committed, until interrupted (Ctrl-C)",
    )
    .action(async (options: EventsOptions) => {
      const { limit, format } = checkOptions(options);
      const { config } = await loadConfig(options.config, process.env);
      const query = filterQuery(options);
      if (options.pending) query.status = "pending";
      if (options.setAside) query.setAside = true;
      const dir = config.gateway.data_dir;
      const reader = openJournalReader(dir);
      let following = false;
      try {
        // taken first: --follow goes on above it, so nothing is printed twice or missed
        const last = reader.lastSequence() ?? 0n;
        const selected = selectEvents(
          reader,
          options.follow ? { ...query, beforeSequence: last + 1n } : query,
          limit,
          options.from !== undefined,
        );
        const { records, matched } = selected;
        const table = options.follow && format === "table" ? followTable(records) : undefined;
        await write(
          table?.text ??
            (format === "json"
              ? eventsJson(records)
              : format === "csv"
                ? eventsCsv(records)
                : records.length > 0
                  ? `${eventsTable(records)}\n`
                  : ""),
        );
        if (records.length === 0 && !options.follow) {
          const hints = noMatchHints(reader, query).map((line) => `  ${line}\n`);
          process.stderr.write(`no events match in ${reader.path}\n${hints.join("")}`);
        } else if (matched > records.length) {
          process.stderr.write(
            `showing the ${selected.which} ${records.length} of ${matched} matching events (--limit)\n`,
          );
        }
        if (reader.corruptSkipped > 0) {
          process.stderr.write(`skipped ${reader.corruptSkipped} corrupt journal record(s)\n`);
        }
        if (!options.follow) return;
        following = true;
        await followUntilSignal({
          dir,
          reader,
          query,
          after: last,
          print: (more) => write(table ? table.more(more) : eventsJson(more)),
        });
      } finally {
        if (!following) reader.close();
      }
    });
}

/** Follows until SIGINT or SIGTERM; the reader is the follower's from here on. */
async function followUntilSignal(request: {
  dir: string;
  reader: JournalReader;
  query: ReaderQuery;
  after: bigint;
  print(records: readonly JournalRecord[]): Promise<void>;
}): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    await follow({
      ...request,
      signal: controller.signal,
      warn: (line) => process.stderr.write(`${line}\n`),
    });
  } finally {
    process.removeListener("SIGINT", stop);
    process.removeListener("SIGTERM", stop);
  }
}

/** Writes to stdout, waiting while the pipe is full. */
async function write(text: string): Promise<void> {
  if (text === "") return;
  if (!process.stdout.write(text)) {
    await new Promise((resolve) => process.stdout.once("drain", resolve));
  }
}
