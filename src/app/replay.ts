/**
 * `plc2mqtt replay` wired: the journal, read-only (journal/reader.ts), feeding the replay
 * publisher (publish/replay.ts), which knows nothing of the journal.
 *
 * What is replayed: records whose event time is in [from, to] (and match device, tag, type)
 * that the broker already acknowledged, in sequence order. Pending records are left out: the
 * daemon publishes them anyway, and sending them first as replays would make a consumer that
 * de-duplicates on id drop the real one. Records removed by retention are gone.
 *
 * Set-aside records (the broker refused them for good, journal/set-aside.ts) are never part of
 * a plain replay. `setAside` replays exactly those (of the range and filters), once the cause is
 * fixed: each one the broker acknowledges is then cleared (published, no longer set aside) in
 * the journal, written beside the running daemon; one the broker refuses again stays set aside
 * and the replay goes on with the next (the report says how many, and why).
 *
 * The client id is `<the daemon's client id>-replay-<pid>`: never the daemon's, so the broker
 * does not disconnect the running gateway.
 *
 * Replay on request (replay-requests.ts) selects its records with the same replayQuery.
 */
import type { GatewayConfig } from "../config/schema/root.ts";
import { withReplay } from "../events/cloudevent.ts";
import {
  clearSetAside,
  type JournalRecord,
  openJournalReader,
  type ReaderQuery,
} from "../journal/index.ts";
import { errorMessage, GatewayError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { replayRecords } from "../publish/index.ts";

export interface ReplayFilter {
  device?: string;
  subject?: string;
  type?: string;
  from: number;
  to?: number;
  /** Replay the set-aside records instead of the published ones. */
  setAside?: boolean;
  /** `--where KEY=VALUE` terms (journal/where.ts), all of which must hold. */
  where?: ReaderQuery["where"];
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
  /** With setAside: records the broker refused again (still set aside), and the first reasons. */
  refused: number;
  refusals: string[];
  /** With setAside: records cleared (published now, no longer set aside). */
  cleared: number;
  /** With setAside: why the acknowledged records could not be cleared in the journal. */
  clearError?: string;
  clientId: string;
  broker: string;
}

export interface DryRunLine {
  record: JournalRecord;
  /** The document exactly as it would be sent (replay: true). */
  payload: string;
}

/** The journal query of a replay: shared by the CLI and replay on request (replay-requests.ts). */
export function replayQuery(filter: ReplayFilter): Omit<ReaderQuery, "limit" | "order"> {
  return {
    ...(filter.setAside ? { setAside: true } : { status: "published" as const }),
    from: filter.from,
    ...(filter.to === undefined ? {} : { to: filter.to }),
    ...(filter.device === undefined ? {} : { device: filter.device }),
    ...(filter.subject === undefined ? {} : { subject: filter.subject }),
    ...(filter.type === undefined ? {} : { type: filter.type }),
    ...(filter.where === undefined ? {} : { where: filter.where }),
  };
}

/** The daemon's MQTT client id: mqtt.client_id, else plc2mqtt-<gateway id>. */
export function daemonClientId(config: GatewayConfig): string {
  return config.mqtt?.client_id ?? `plc2mqtt-${config.gateway.id}`;
}

export function replayClientId(config: GatewayConfig, pid: number = process.pid): string {
  return `${daemonClientId(config)}-replay-${pid}`;
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
  const acked: bigint[] = [];
  const refusals: string[] = [];
  let report: ReplayReport | undefined;
  try {
    const query = replayQuery(filter);
    const matched = reader.count(query);
    const clientId = replayClientId(config);
    report = {
      matched,
      published: 0,
      skipped: 0,
      refused: 0,
      refusals,
      cleared: 0,
      clientId,
      broker: mqtt.url,
    };
    if (matched === 0) return report;
    const result = await replayRecords(reader.scan(query), {
      mqtt,
      clientId,
      log: request.log,
      signal: request.signal,
      ...(request.ackTimeoutMs === undefined ? {} : { ackTimeoutMs: request.ackTimeoutMs }),
      onProgress: (published) => request.onProgress?.(published, matched),
      ...(filter.setAside
        ? {
            onAcked: (record) => acked.push(record.sequence),
            onRefused: (record, reason) => {
              if (refusals.length < 5) refusals.push(`${record.topic}: ${reason}`);
              request.log.warn(
                { sequence: String(record.sequence), topic: record.topic, reason },
                "refused again: the event stays set aside",
              );
            },
          }
        : {}),
    });
    report.published = result.published;
    report.refused = result.refused;
    report.skipped = result.skipped + reader.corruptSkipped;
    return report;
  } finally {
    reader.close();
    // what the broker took is cleared even when the replay stopped half way
    if (filter.setAside && report) clear(reader.path, acked, report, request.log);
  }
}

/** Clears the set-aside state of the records the broker acknowledged (see the header). */
function clear(path: string, acked: readonly bigint[], report: ReplayReport, log: Logger): void {
  try {
    report.cleared = clearSetAside(path, acked, Date.now());
  } catch (err) {
    report.clearError = errorMessage(err);
    log.error(
      { err, acknowledged: acked.length },
      "replayed set-aside events stay listed as set aside: the journal could not be written",
    );
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
    for (const record of reader.scan(replayQuery(filter))) {
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
