/**
 * `plc2mqtt replay` wired: the journal, read-only (journal/reader.ts), feeding the replay
 * publisher (publish/replay.ts), which knows nothing of the journal.
 *
 * What is replayed: records whose event time is in [from, to] (and match device, tag, type)
 * that the broker already acknowledged, in sequence order. Pending records are left out: the
 * daemon publishes them anyway, and sending them first as replays would make a consumer that
 * de-duplicates on id drop the real one. Records removed by retention are gone.
 *
 * The client id is `<the daemon's client id>-replay-<pid>`: never the daemon's, so the broker
 * does not disconnect the running gateway.
 */
import type { GatewayConfig } from "../config/schema/root.ts";
import { withReplay } from "../events/cloudevent.ts";
import { openJournalReader, type ReaderQuery } from "../journal/reader.ts";
import type { JournalRecord } from "../journal/types.ts";
import { GatewayError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { replayRecords } from "../publish/replay.ts";

export interface ReplayFilter {
  device?: string;
  subject?: string;
  type?: string;
  from: number;
  to?: number;
}

export interface ReplayRequest {
  config: GatewayConfig;
  filter: ReplayFilter;
  log: Logger;
  signal: AbortSignal;
  /** After every PUBACK: acknowledged so far, and how many match in all. */
  onProgress?: (published: number, total: number) => void;
  /** Longest wait for one PUBACK (default 10 s). */
  ackTimeoutMs?: number;
}

export interface ReplayReport {
  /** Published records that matched when the replay started. */
  matched: number;
  published: number;
  /** Rows skipped: corrupt in the journal, or not a document. */
  skipped: number;
  clientId: string;
  broker: string;
}

export interface DryRunLine {
  record: JournalRecord;
  /** The document exactly as it would be sent (replay: true). */
  payload: string;
}

function readerQuery(filter: ReplayFilter): Omit<ReaderQuery, "limit" | "order"> {
  return {
    status: "published",
    from: filter.from,
    ...(filter.to === undefined ? {} : { to: filter.to }),
    ...(filter.device === undefined ? {} : { device: filter.device }),
    ...(filter.subject === undefined ? {} : { subject: filter.subject }),
    ...(filter.type === undefined ? {} : { type: filter.type }),
  };
}

export function replayClientId(config: GatewayConfig, pid: number = process.pid): string {
  const daemon = config.mqtt?.client_id ?? `plc2mqtt-${config.gateway.id}`;
  return `${daemon}-replay-${pid}`;
}

/** Re-publishes the matching published records; rejects on the first failure (see publish/replay.ts). */
export async function replayJournal(request: ReplayRequest): Promise<ReplayReport> {
  const { config, filter } = request;
  const mqtt = config.mqtt;
  if (mqtt === undefined) {
    throw new GatewayError(
      "USAGE",
      "the config has no mqtt section: there is no broker to replay to",
    );
  }
  const reader = openJournalReader(config.gateway.data_dir);
  try {
    const query = readerQuery(filter);
    const matched = reader.count(query);
    const clientId = replayClientId(config);
    if (matched === 0) {
      return { matched, published: 0, skipped: 0, clientId, broker: mqtt.url };
    }
    const result = await replayRecords(reader.scan(query), {
      mqtt,
      clientId,
      log: request.log,
      signal: request.signal,
      ...(request.ackTimeoutMs === undefined ? {} : { ackTimeoutMs: request.ackTimeoutMs }),
      onProgress: (published) => request.onProgress?.(published, matched),
    });
    return {
      matched,
      published: result.published,
      skipped: result.skipped + reader.corruptSkipped,
      clientId,
      broker: mqtt.url,
    };
  } finally {
    reader.close();
  }
}

/** What replayJournal would send, without connecting. */
export function* dryRunReplay(
  config: GatewayConfig,
  filter: ReplayFilter,
): Generator<DryRunLine, { skipped: number }> {
  const reader = openJournalReader(config.gateway.data_dir);
  let skipped = 0;
  try {
    for (const record of reader.scan(readerQuery(filter))) {
      let payload: string;
      try {
        payload = withReplay(record.payload);
      } catch {
        skipped += 1;
        continue;
      }
      yield { record, payload };
    }
    return { skipped: skipped + reader.corruptSkipped };
  } finally {
    reader.close();
  }
}
