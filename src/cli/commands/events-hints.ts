/**
 * What `plc2mqtt events` says when nothing matches (issue 13 point 7): for each of --type,
 * --device and --tag that matches no event at all in the journal, the values it holds, and
 * for a type the full name a short one stands for (`--type telemetry` -> plc2mqtt.telemetry).
 */
import { EVENT_TYPES } from "../../events/types.ts";
import type { JournalReader, ReaderQuery } from "../../journal/index.ts";

const SHOWN = 20;

function list(values: readonly string[]): string {
  if (values.length === 0) return "none yet";
  const shown = values.slice(0, SHOWN).join(", ");
  return values.length > SHOWN ? `${shown}, ...` : shown;
}

/** The full type names a short one may stand for: `telemetry`, `state` -> plc2mqtt.state.changed. */
function typesLike(short: string, known: readonly string[]): string[] {
  const lower = short.toLowerCase();
  return known.filter((type) => {
    const t = type.toLowerCase();
    return (
      t !== lower && (t.endsWith(`.${lower}`) || t.split(".").includes(lower) || t.includes(lower))
    );
  });
}

/** One line per filter that matches nothing in the whole journal; empty when each matches some. */
export function noMatchHints(reader: JournalReader, query: ReaderQuery): string[] {
  const hints: string[] = [];
  if (query.type !== undefined && reader.count({ type: query.type }) === 0) {
    const inJournal = reader.distinct("type");
    const known = [...new Set([...Object.values(EVENT_TYPES), ...inJournal])].sort();
    const like = typesLike(query.type, known);
    const guess =
      like.length > 0 ? ` (did you mean ${like.map((t) => `--type ${t}`).join(" or ")}?)` : "";
    hints.push(
      `no event has type ${JSON.stringify(query.type)}: types are full names${guess}; in this journal: ${list(inJournal)}`,
    );
  }
  if (query.device !== undefined && reader.count({ device: query.device }) === 0) {
    hints.push(
      `no event has device ${JSON.stringify(query.device)}; devices in this journal: ${list(reader.distinct("device"))}`,
    );
  }
  if (query.subject !== undefined && reader.count({ subject: query.subject }) === 0) {
    hints.push(
      `no event has tag or trigger ${JSON.stringify(query.subject)}; tags and triggers in this journal: ${list(reader.distinct("subject", SHOWN + 1))}`,
    );
  }
  return hints;
}
