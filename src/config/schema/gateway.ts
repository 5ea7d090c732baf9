import { z } from "zod";
import { duration, size } from "../units.ts";
import { identifier, reconnectFields, secretRef } from "./common.ts";
import { replayRequestsSchema } from "./replay-requests.ts";

export { secretRef };

export const gatewaySchema = z
  .strictObject({
    id: identifier("the gateway id").describe(
      "Gateway id, unique in the plant: in every event's source and id",
    ),
    site: z.string().min(1).max(64).optional().describe("Default site for all devices"),
    data_dir: z
      .string()
      .min(1)
      .default("/var/lib/plc2mqtt")
      .describe("Where the journal and PKI live (default /var/lib/plc2mqtt)"),
  })
  .describe("This gateway");

/** Classes whose events may go out in batches: never the retained ones (state, status). */
export const BATCH_CLASSES = ["telemetry", "quality", "event"] as const;

/** Telemetry batching (issue 12.3): off unless `classes` names one. */
export const batchSchema = z
  .strictObject({
    classes: z
      .array(z.enum(BATCH_CLASSES))
      .max(BATCH_CLASSES.length)
      .refine((list) => new Set(list).size === list.length, "each class at most once")
      .default([])
      .describe(
        "Event classes published in batches (application/cloudevents-batch+json: one MQTT message holding a JSON array of events) on <the class topic>/_batch: telemetry, quality, event (trigger events). State and status topics are retained and never batched (default [], nothing batched)",
      ),
    max_events: z
      .number()
      .int()
      .min(2)
      .max(10_000)
      .default(100)
      .describe("Most events in one batch (default 100)"),
    max_delay: duration({
      min: 0,
      max: 10_000,
      description:
        "Longest a batch waits for more events after its first one was read from the journal; 0ms sends what is waiting at once (default 20ms)",
    }).default(20),
  })
  .describe(
    "Batches: consecutive events of one device and class in one message, in sequence order, each still its own CloudEvent",
  );

export const mqttSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^mqtts?:\/\/[^/\s]+$/, "expected mqtt://host:port or mqtts://host:port")
      .refine(
        (url) => !/^mqtts?:\/\/[^/]*@/.test(url),
        "no user or password in the URL: use mqtt.username and mqtt.password (a ${env:} or ${file:} reference)",
      )
      .describe("Broker URL: mqtt://host:1883, or mqtts://host:8883 for TLS with verification"),
    client_id: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe("MQTT client id (default plc2mqtt-<gateway id>)"),
    username: z
      .string()
      .min(1)
      .optional()
      .describe("User name; ${env:NAME} and ${file:/path} allowed"),
    password: secretRef("the MQTT password").optional(),
    ca: z
      .string()
      .min(1)
      .optional()
      .describe("PEM file of the CA that signed the broker's certificate"),
    cert: z.string().min(1).optional().describe("PEM file of the client certificate"),
    key: z.string().min(1).optional().describe("PEM file of the client certificate's private key"),
    base_topic: z
      .string()
      .regex(/^[^#+\s]+$/, "a topic prefix without wildcards or spaces")
      .default("plc2mqtt")
      .describe("First topic level (default plc2mqtt)"),
    topic_template: z
      .string()
      .regex(/\{class\}/, "the template needs {class}")
      .regex(/\{name\}/, "the template needs {name}")
      .regex(
        /^(?:[^{}#+\s]|\{(?:base|gateway|site|area|line|equipment|device|class|name)\})+$/,
        "placeholders are {base} {gateway} {site} {area} {line} {equipment} {device} {class} {name}; no wildcards or spaces",
      )
      .default("{base}/{site}/{area}/{line}/{equipment}/{class}/{name}")
      .describe(
        "Topic of each event; empty levels are left out, equipment defaults to the device id (default {base}/{site}/{area}/{line}/{equipment}/{class}/{name})",
      ),
    max_in_flight: z
      .number()
      .int()
      .min(1)
      .max(65_535)
      .default(100)
      .describe("QoS 1 messages sent but not yet acknowledged (default 100)"),
    max_packet_size: size({
      min: 128,
      max: 268_435_455,
      description:
        "Largest MQTT packet the broker takes (no default: the Maximum Packet Size an MQTT 5 broker announces; set it for MQTT 3.1.1 brokers and cloud limits such as AWS IoT Core's 128KB). An event whose PUBLISH would be larger is set aside, never sent",
    }).optional(),
    retain: z
      .boolean()
      .default(true)
      .describe(
        "Publish status and state topics, the last will and the health message retained (default true); false for brokers without retained messages (mosquitto retain_available false, some cloud brokers): a new subscriber then waits for the next status instead of reading the last one",
      ),
    batch: batchSchema.default(batchSchema.parse({})),
    replay_requests: replayRequestsSchema.default(replayRequestsSchema.parse({})),
    ...reconnectFields("the broker connection", 500),
    keepalive: duration({
      min: 1000,
      max: 3_600_000,
      description: "MQTT keep alive (default 30s)",
    }).default(30_000),
  })
  .superRefine((mqtt, ctx) => {
    if (mqtt.password !== undefined && mqtt.username === undefined) {
      ctx.addIssue({ code: "custom", path: ["username"], message: "a password needs a username" });
    }
    if (mqtt.batch.classes.length > 0 && !mqtt.topic_template.endsWith("/{name}")) {
      ctx.addIssue({
        code: "custom",
        path: ["batch", "classes"],
        message:
          "batching needs a topic_template whose last level is {name}: a batch goes to the same topic with _batch as its last level",
      });
    }
    const plain = mqtt.url.startsWith("mqtt://");
    for (const key of ["ca", "cert", "key"] as const) {
      if (plain && mqtt[key] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `${key} is a TLS setting: it needs an mqtts:// url (with mqtt:// it would be ignored)`,
        });
      }
    }
  })
  .describe("The MQTT broker events are published to");

export const journalSchema = z
  .strictObject({
    max_bytes: size({
      min: 1024 * 1024,
      max: 2 ** 50,
      description: "Largest journal size (default 1GiB)",
    }).default(1024 ** 3),
    retention: duration({
      min: 0,
      max: 3650 * 86_400_000,
      description: "How long published events are kept for queries and replay (default 7d)",
    }).default(7 * 86_400_000),
    commit_interval: duration({
      min: 1,
      max: 10_000,
      description: "Longest time an event waits for its group commit (default 50ms)",
    }).default(50),
    commit_max_events: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .optional()
      .describe(
        "Most events in one group commit, and in one hand-over to the journal (default 250; 1000 when mqtt.batch names a class). A commit holds the event loop and no PUBACK is read meanwhile: unbatched, the window of single events runs dry during a long one; batched, a window holds many events and fewer, larger commits cost less",
      ),
  })
  .describe("The durable local journal");

/** host:port with a port of 0 (any free port, for tests) to 65535. */
const listenAddress = z
  .string()
  .regex(/^[^:\s]+:\d{1,5}$/, "expected host:port")
  .refine((text) => Number(text.slice(text.lastIndexOf(":") + 1)) <= 65_535, {
    message: "the port must be between 0 and 65535",
  });

export const healthSchema = z
  .strictObject({
    max_pending_events: z
      .number()
      .int()
      .min(1)
      .max(1_000_000_000)
      .default(100_000)
      .describe(
        "Unhealthy when the broker is away and more events than this wait in the journal (default 100000)",
      ),
    max_pending_age: duration({
      min: 1000,
      max: 30 * 86_400_000,
      description:
        "Unhealthy when the broker is away and the oldest waiting event is older than this (default 5m)",
    }).default(300_000),
    stale_polls: z
      .number()
      .int()
      .min(2)
      .max(1000)
      .default(5)
      .describe(
        "A connected device whose last good read is older than this many poll intervals is a device problem (default 5)",
      ),
    devices: z
      .enum(["all_down", "any_down", "ignore"])
      .default("all_down")
      .describe(
        "When device problems make the gateway unhealthy: all_down (every device has one; default), any_down, or ignore",
      ),
    topic_interval: z
      .union([
        z.literal(false),
        duration({
          min: 1000,
          max: 86_400_000,
          description: "Period of the retained health message",
        }),
      ])
      .default(30_000)
      .describe(
        "How often the health summary is published, retained, on <gateway status topic>/health (default 30s); false turns it off",
      ),
  })
  .describe("What /healthz and the health topic call healthy");

export const httpSchema = z
  .strictObject({
    listen: z
      .union([z.literal(false), listenAddress])
      .default("127.0.0.1:8787")
      .describe(
        "host:port of /healthz and /metrics (default 127.0.0.1:8787; port 0 picks a free one); false turns it off",
      ),
    health: healthSchema.default(healthSchema.parse({})),
  })
  .describe("Health and metrics endpoint");
