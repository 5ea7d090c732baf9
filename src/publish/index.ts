/** The publisher's public face: the only module the app imports from publish/. */
export { Publisher } from "./publisher.ts";
export type {
  MessageHandler,
  MqttConfig,
  OutboundMessage,
  OutboundRecord,
  PublisherJournal,
  PublisherOptions,
  PublisherStats,
  PublisherStatus,
  Subscription,
} from "./types.ts";
