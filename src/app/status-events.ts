/**
 * The gateway's own events: gateway status (online, offline, and the MQTT last will) and device
 * status.
 *
 * Gateway status times (the publisher calls these at the moments they describe):
 * - `offline` is stamped when it is made: at the start of a connection episode (the process
 *   start, or just after a connection was lost; its sequence is reserved for the session's
 *   `online`, and it is published as is only when the process dies before a session exists, or
 *   when an outage left more than 10,000 events behind it: the journal then refuses to rewrite
 *   it (its hash chain, journal/replacements.ts) and the publisher starts a new episode) and at
 *   a clean stop.
 * - `online` is stamped when the MQTT session was established (CONNACK); it takes over the
 *   reserved record, so its sequence may be older than events journaled while connecting.
 * - The last will is composed before its session exists and published by the broker at a
 *   moment nobody can know in advance, so it claims no moment of loss: `time` and
 *   `data.since` are when the connect attempt that opened the session started, and
 *   `data.last_will` is true. It cannot take a sequence number of its own (it is written
 *   before anything it would follow is known), so it repeats the reserved sequence of the
 *   `online` whose session it ends: the one event that does not advance the sequence.
 * - Every connect attempt's will has an id of its own (issue 11.3): `<epoch>-will-<attempt>-
 *   <sequence>`, attempt 1, 2, ... counted per reserved sequence (per connection episode).
 *   Each attempt's will says another `since`, and a broker may publish more than one of them
 *   (it took the CONNECT of an attempt the gateway then gave up on, and later the will of the
 *   session that followed): under one id, a consumer that de-duplicates on it would drop the
 *   second. The sequence is never reused, so the id is unique forever.
 *
 * The chain head (issue 14): every gateway status (online, offline, the will) carries
 * `data.chain`, the journal's hash chain head as it was when the status was made
 * (Journal.chainHead: the last record the publisher was done with before it, which no
 * replace() can change, so the head stays checkable by `events verify --anchor`). Retained on
 * the broker, it is a copy of the head outside the edge PC. Absent while the chain is empty.
 *
 * Device status (issue 13.1): an event only when the status changes (the device watch tells a
 * change from a repeat; a failed reconnect that says the same again publishes nothing), and its
 * error text on one line (oneLine), whatever the driver's error message carried.
 */

import { formatSequence } from "../events/cloudevent.ts";
import type { AssetContext, GatewayEvent, JsonValue } from "../events/types.ts";
import { EVENT_TYPES } from "../events/types.ts";
import type { JournalChainHead, JournalRecord, Render, RenderedEvent } from "../journal/index.ts";
import { oneLine } from "../lib/errors.ts";
import type { DeviceStatus } from "./driver-runner.ts";

export interface StatusContext {
  gatewayId: string;
  site?: string;
  version: string;
  startedAt: number;
  now: () => number;
  /** The journal's chain head to publish (Journal.chainHead); none: no `chain` in the data. */
  chain?: () => JournalChainHead | undefined;
}

/** `data.chain` of a status or health message: the head with its sequence formatted. */
export function chainData(
  head: JournalChainHead | undefined,
): { chain: { sequence: string; hash: string } } | Record<string, never> {
  return head === undefined
    ? {}
    : { chain: { sequence: formatSequence(head.sequence), hash: head.hash } };
}

function gatewayStatus(
  ctx: StatusContext,
  status: "online" | "offline",
  time: number,
  extra: { [key: string]: JsonValue } = {},
): GatewayEvent {
  return {
    type: EVENT_TYPES.gatewayStatus,
    device: ctx.gatewayId,
    subject: ctx.gatewayId,
    time,
    data: {
      status,
      version: ctx.version,
      started_at: new Date(ctx.startedAt).toISOString(),
      ...extra,
      ...chainData(ctx.chain?.()),
    },
    topicClass: "status",
    asset: ctx.site === undefined ? {} : { site: ctx.site },
  };
}

/**
 * `<epoch>-will-<attempt>-<sequence>`: the will of connect attempt `attempt` (1, 2, ...) of the
 * episode whose (reserved) online event is `<epoch>-<sequence>`.
 */
export function willId(onlineId: string, attempt: number): string {
  const cut = onlineId.lastIndexOf("-");
  return `${onlineId.slice(0, cut)}-will-${attempt}${onlineId.slice(cut)}`;
}

export function gatewayStatusEvents(ctx: StatusContext, render: Render) {
  // connect attempts of the current episode: the publisher composes one will per attempt
  let episode: { sequence: bigint; attempts: number } | undefined;
  return {
    online: () => gatewayStatus(ctx, "online", ctx.now()),
    offline: () => gatewayStatus(ctx, "offline", ctx.now()),
    will: (reserved: Pick<JournalRecord, "sequence" | "id">): RenderedEvent => {
      if (episode?.sequence !== reserved.sequence)
        episode = { sequence: reserved.sequence, attempts: 0 };
      episode.attempts += 1;
      const since = ctx.now();
      const event = gatewayStatus(ctx, "offline", since, {
        since: new Date(since).toISOString(),
        last_will: true,
      });
      return render(event, reserved.sequence, willId(reserved.id, episode.attempts));
    },
  };
}

export function deviceStatusEvent(
  device: string,
  asset: AssetContext,
  status: DeviceStatus,
  time: number,
): GatewayEvent {
  return {
    type: EVENT_TYPES.deviceStatus,
    device,
    subject: device,
    time,
    data:
      status.status === "connected"
        ? { status: "connected" }
        : { status: status.status, error: oneLine(status.error) },
    topicClass: "status",
    asset,
  };
}
