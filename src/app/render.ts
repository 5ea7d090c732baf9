/** How the journal renders an event for the wire: the CloudEvents document and its topic. */
import type { GatewayConfig } from "../config/schema/root.ts";
import { fastRenderer } from "../events/render-fast.ts";
import { buildTopic, DEFAULT_TOPIC_TEMPLATE, isRetained } from "../events/topic.ts";
import type { GatewayEvent } from "../events/types.ts";
import type { Render } from "../journal/index.ts";

/** Topics kept (one per device, class and tag): far above any tag map's size. */
const MAX_TOPICS_CACHED = 100_000;

export function createRender(config: GatewayConfig): Render {
  const gatewayId = config.gateway.id;
  const topic = {
    base: config.mqtt?.base_topic ?? "plc2mqtt",
    gateway: gatewayId,
    template: config.mqtt?.topic_template ?? DEFAULT_TOPIC_TEMPLATE,
  };
  const document = fastRenderer(gatewayId);
  // a tag's topic depends on its device's asset, its class and its name only: built once
  const topics = new Map<string, { asset: GatewayEvent["asset"]; topic: string }>();
  const topicOf = (event: GatewayEvent): string => {
    const key = `${event.device}\u0000${event.topicClass}\u0000${event.subject}`;
    const cached = topics.get(key);
    if (cached !== undefined && cached.asset === event.asset) return cached.topic;
    if (topics.size >= MAX_TOPICS_CACHED) topics.clear();
    const built = buildTopic(event, topic);
    topics.set(key, { asset: event.asset, topic: built });
    return built;
  };
  return (event, sequence, id) => ({
    topic: topicOf(event),
    retain: isRetained(event),
    payload: document(event, sequence, id),
  });
}
