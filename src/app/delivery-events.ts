/**
 * The gateway's delivery events: `plc2mqtt.delivery.set_aside` announces an event the broker
 * refused for good (publish/set-aside.ts). It is a gateway-level status event like the
 * journal's overflow notice (device and source: the gateway; subject `delivery`; the status
 * topic class, retained), stamped when the event was set aside, and journaled and published
 * like any event.
 */
import { formatSequence } from "../events/cloudevent.ts";
import { EVENT_TYPES, type GatewayEvent } from "../events/types.ts";
import type { SetAsideNotice } from "../publish/index.ts";

export interface DeliveryContext {
  gatewayId: string;
  site?: string;
  now: () => number;
}

export function setAsideEvent(ctx: DeliveryContext, notice: SetAsideNotice): GatewayEvent {
  return {
    type: EVENT_TYPES.deliverySetAside,
    device: ctx.gatewayId,
    subject: "delivery",
    time: ctx.now(),
    data: {
      sequence: formatSequence(notice.sequence),
      event_id: notice.id,
      topic: notice.topic,
      reason: notice.reason,
    },
    topicClass: "status",
    asset: ctx.site === undefined ? {} : { site: ctx.site },
  };
}
