/** How the journal renders an event for the wire: the CloudEvents document and its topic. */
import type { GatewayConfig } from "../config/schema/root.ts";
import { fastRenderer } from "../events/render-fast.ts";
import { buildTopic, DEFAULT_TOPIC_TEMPLATE, isRetained } from "../events/topic.ts";
import type { Render } from "../journal/types.ts";

export function createRender(config: GatewayConfig): Render {
  const gatewayId = config.gateway.id;
  const topic = {
    base: config.mqtt?.base_topic ?? "plc2mqtt",
    gateway: gatewayId,
    template: config.mqtt?.topic_template ?? DEFAULT_TOPIC_TEMPLATE,
  };
  const document = fastRenderer(gatewayId);
  return (event, sequence, id) => ({
    topic: buildTopic(event, topic),
    retain: isRetained(event),
    payload: document(event, sequence, id),
  });
}
