/**
 * The gateway's own events: gateway status (online, offline, and the MQTT last will) and device
 * status.
 *
 * Gateway status times (the publisher calls these at the moments they describe):
 * - `offline` is stamped when it is made: at the start of a connection episode (the process
 *   start, or just after a connection was lost; its sequence is reserved for the session's
 *   `online`, and it is published as is only when the process dies before a session exists)
 *   and at a clean stop.
 * - `online` is stamped when the MQTT session was established (CONNACK); it takes over the
 *   reserved record, so its sequence may be older than events journaled while connecting.
 * - The last will is composed before its session exists and published by the broker at a
 *   moment nobody can know in advance, so it claims no moment of loss: `time` and
 *   `data.since` are when the connect attempt that opened the session started, and
 *   `data.last_will` is true. It cannot take a sequence number of its own (it is written
 *   before anything it would follow is known), so it repeats the reserved sequence of the
 *   `online` whose session it ends, with an id of its own: the one event that does not
 *   advance the sequence.
 */

import type { AssetContext, GatewayEvent, JsonValue } from "../events/types.ts";
import { EVENT_TYPES } from "../events/types.ts";
import type { JournalRecord, Render, RenderedEvent } from "../journal/types.ts";
import type { DeviceStatus } from "./driver-runner.ts";

export interface StatusContext {
  gatewayId: string;
  site?: string;
  version: string;
  startedAt: number;
  now: () => number;
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
    },
    topicClass: "status",
    asset: ctx.site === undefined ? {} : { site: ctx.site },
  };
}

/** `<epoch>-will-<sequence>` for the (reserved) online event `<epoch>-<sequence>` it ends. */
export function willId(onlineId: string): string {
  const cut = onlineId.lastIndexOf("-");
  return `${onlineId.slice(0, cut)}-will${onlineId.slice(cut)}`;
}

export function gatewayStatusEvents(ctx: StatusContext, render: Render) {
  return {
    online: () => gatewayStatus(ctx, "online", ctx.now()),
    offline: () => gatewayStatus(ctx, "offline", ctx.now()),
    will: (reserved: Pick<JournalRecord, "sequence" | "id">): RenderedEvent => {
      const since = ctx.now();
      const event = gatewayStatus(ctx, "offline", since, {
        since: new Date(since).toISOString(),
        last_will: true,
      });
      return render(event, reserved.sequence, willId(reserved.id));
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
        : { status: status.status, error: status.error },
    topicClass: "status",
    asset,
  };
}
