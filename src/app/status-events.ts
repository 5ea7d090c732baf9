/**
 * The gateway's own events: gateway status (online, offline, and the MQTT last will) and device
 * status. The last will cannot take a sequence number of its own (it is written before anything
 * it would follow is known), so it repeats the sequence of the online event whose session it
 * ends, with an id of its own: the one event that does not advance the sequence.
 */

import type { AssetContext, GatewayEvent } from "../events/types.ts";
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

function gatewayStatus(ctx: StatusContext, status: "online" | "offline"): GatewayEvent {
  return {
    type: EVENT_TYPES.gatewayStatus,
    device: ctx.gatewayId,
    subject: ctx.gatewayId,
    time: ctx.now(),
    data: { status, version: ctx.version, started_at: new Date(ctx.startedAt).toISOString() },
    topicClass: "status",
    asset: ctx.site === undefined ? {} : { site: ctx.site },
  };
}

/** `<epoch>-will-<sequence>` for the online event `<epoch>-<sequence>` it ends. */
export function willId(onlineId: string): string {
  const cut = onlineId.lastIndexOf("-");
  return `${onlineId.slice(0, cut)}-will${onlineId.slice(cut)}`;
}

export function gatewayStatusEvents(ctx: StatusContext, render: Render) {
  return {
    online: () => gatewayStatus(ctx, "online"),
    offline: () => gatewayStatus(ctx, "offline"),
    will: (online: JournalRecord): RenderedEvent =>
      render(gatewayStatus(ctx, "offline"), online.sequence, willId(online.id)),
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
