/** The publisher's public face: the only module the app imports from publish/. */
export { Publisher } from "./publisher.ts";
export { SET_ASIDE_CLASSES, type SetAsideClass } from "./refusals.ts";
export type {
  MessageHandler,
  MqttConfig,
  OutboundMessage,
  OutboundRecord,
  PublisherJournal,
  PublisherOptions,
  PublisherStats,
  PublisherStatus,
  SetAsideNotice,
  Subscription,
} from "./types.ts";
