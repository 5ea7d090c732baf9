/**
 * `mqtt.replay_requests` (issue 14): replay on request over MQTT, off by default. Enabled, it
 * needs at least one check: an allow-list of the client ids a request may claim, or a shared
 * secret (a ${env:}/${file:} reference only, never written in the YAML). With both, a request
 * must pass both. README "Replay on request" has the request format and the ACL it relies on.
 */
import { z } from "zod";
import { secretRef } from "./common.ts";

export const replayRequestsSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        "Answer replay requests on <base>/<site>/cmd/<gateway id>/replay (default false: the gateway does not even subscribe)",
      ),
    allow_clients: z
      .array(
        z
          .string()
          .min(1)
          .max(128)
          .regex(/^[^\s]+$/, "a client id without spaces"),
      )
      .max(100)
      .refine((list) => new Set(list).size === list.length, "each client id at most once")
      .default([])
      .describe(
        "Client ids a request may claim (client_id in the request); only as strong as the broker ACL on the cmd topic (default [], no list)",
      ),
    secret: secretRef("the replay request secret").optional(),
    rate: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(200)
      .describe("Most replayed events per second, sent in bursts of at most rate/20 (default 200)"),
    max_events: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(10_000)
      .describe("A request matching more events than this is refused (default 10000)"),
  })
  .superRefine((settings, ctx) => {
    if (settings.enabled && settings.allow_clients.length === 0 && settings.secret === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["enabled"],
        message:
          "replay requests need allow_clients or a secret (both is stronger): anybody could ask otherwise",
      });
    }
  })
  .describe("Replay on request over MQTT (MQTT 5 request/response)");

export type ReplayRequestSettings = z.output<typeof replayRequestsSchema>;
