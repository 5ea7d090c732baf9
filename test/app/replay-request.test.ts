/**
 * Replay on request: reading a request and judging it (src/app/replay-request.ts), and the
 * pace of the replay (src/app/replay-pace.ts) on a clock the test drives, and the topic it
 * listens to (src/events/topic.ts commandTopic).
 */
import { describe, expect, it } from "vitest";
import { burstOf, paced } from "../../src/app/replay-pace.ts";
import {
  authorize,
  MAX_REQUEST_BYTES,
  parseReplayRequest,
  sameSecret,
} from "../../src/app/replay-request.ts";
import { replayRequestTopic } from "../../src/app/replay-requests.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const body = (value: unknown) => Buffer.from(JSON.stringify(value));

describe("parseReplayRequest", () => {
  it("reads ISO 8601 times with their zone and epoch milliseconds, and the filters", () => {
    const parsed = parseReplayRequest(
      body({
        from: "2026-03-01T09:00:00.250+01:00",
        to: NOW,
        device: "press-1",
        tag: "temperature",
        type: "plc2mqtt.telemetry",
        client_id: "mes",
        secret: "s3cret",
      }),
      undefined,
      NOW,
    );
    expect(parsed).toEqual({
      ok: true,
      request: {
        from: Date.parse("2026-03-01T08:00:00.250Z"),
        to: NOW,
        device: "press-1",
        tag: "temperature",
        type: "plc2mqtt.telemetry",
        clientId: "mes",
        secret: "s3cret",
      },
    });
  });

  it("takes `to` as the moment it is judged when it is left out", () => {
    const parsed = parseReplayRequest(body({ from: "2026-03-01T11:00:00Z" }), undefined, NOW);
    expect(parsed.ok && parsed.request.to).toBe(NOW);
  });

  it("takes the client id from the user property, and refuses two that differ", () => {
    const fromProperty = parseReplayRequest(body({ from: 0 }), { client_id: "mes" }, NOW);
    expect(fromProperty.ok && fromProperty.request.clientId).toBe("mes");
    const both = parseReplayRequest(body({ from: 0, client_id: "erp" }), { client_id: "mes" }, NOW);
    expect(both).toMatchObject({ ok: false, reason: "bad_request", detail: /differ/ });
    const twice = parseReplayRequest(body({ from: 0 }), { client_id: ["a", "b"] }, NOW);
    expect(twice).toMatchObject({ ok: false, reason: "bad_request", detail: /twice/ });
  });

  it.each([
    ["not JSON", Buffer.from("from=yesterday"), /not JSON/],
    ["an array", body([1, 2]), /JSON object/],
    ["no from", body({ to: NOW }), /from is required/],
    ["a time without its zone", body({ from: "2026-03-01T08:00:00" }), /with its zone/],
    ["a date only", body({ from: "2026-03-01" }), /with its zone/],
    ["an impossible date", body({ from: "2026-02-31T08:00:00Z" }), /not an ISO 8601/],
    ["fractional epoch ms", body({ from: 1.5 }), /integer/],
    ["a boolean time", body({ from: true }), /ISO 8601/],
    ["an unknown key", body({ from: 0, form: 1 }), /unknown key\(s\) form/],
    ["an empty device", body({ from: 0, device: "" }), /device must be/],
    ["a numeric tag", body({ from: 0, tag: 5 }), /tag must be/],
    ["too large", Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x20), /larger than/],
  ])("refuses %s as a bad request", (_what, payload, detail) => {
    expect(parseReplayRequest(payload, undefined, NOW)).toMatchObject({
      ok: false,
      reason: "bad_request",
      detail: expect.stringMatching(detail),
    });
  });

  it("refuses from after to as a bad range", () => {
    expect(
      parseReplayRequest(body({ from: "2026-03-01T12:00:01Z", to: NOW }), undefined, NOW),
    ).toMatchObject({ ok: false, reason: "bad_range" });
    // from in the future, to left out (now)
    expect(parseReplayRequest(body({ from: NOW + 1 }), undefined, NOW)).toMatchObject({
      ok: false,
      reason: "bad_range",
    });
  });
});

describe("authorize", () => {
  const request = { from: 0, to: NOW, clientId: "mes", secret: "s3cret" };

  it("lets a listed client with the right secret through", () => {
    expect(authorize(request, { allowClients: ["erp", "mes"], secret: "s3cret" })).toBe(undefined);
  });

  it("refuses an unlisted client, or one that names none, when there is a list", () => {
    expect(authorize(request, { allowClients: ["erp"] })).toMatchObject({
      reason: "unknown_client",
    });
    const { clientId: _, ...anonymous } = request;
    expect(authorize(anonymous, { allowClients: ["mes"] })).toMatchObject({
      reason: "unknown_client",
    });
  });

  it("refuses a wrong or missing secret even from a listed client", () => {
    expect(authorize(request, { allowClients: ["mes"], secret: "other" })).toMatchObject({
      reason: "bad_secret",
    });
    const { secret: _, ...noSecret } = request;
    expect(authorize(noSecret, { allowClients: [], secret: "s3cret" })).toMatchObject({
      reason: "bad_secret",
    });
  });

  it("needs no client id when only a secret is set", () => {
    const { clientId: _, ...anonymous } = request;
    expect(authorize(anonymous, { allowClients: [], secret: "s3cret" })).toBe(undefined);
  });

  it("compares secrets whole: a prefix, a longer one or another case is not the secret", () => {
    expect(sameSecret("s3cret", "s3cret")).toBe(true);
    expect(sameSecret("s3cre", "s3cret")).toBe(false);
    expect(sameSecret("s3cret!", "s3cret")).toBe(false);
    expect(sameSecret("S3CRET", "s3cret")).toBe(false);
    expect(sameSecret("", "s3cret")).toBe(false);
  });
});

describe("paced", () => {
  const records = (n: number) => Array.from({ length: n }, (_, i) => ({ sequence: BigInt(i + 1) }));

  it("sends bursts of rate/20 and sleeps between them; stops after the last sequence", async () => {
    let clock = 0;
    const sleeps: number[] = [];
    const sent: Array<{ sequence: bigint; at: number }> = [];
    const rate = 200;
    expect(burstOf(rate)).toBe(10);
    for await (const record of paced(records(45), {
      rate,
      stopAfter: 35n,
      now: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
    })) {
      sent.push({ sequence: record.sequence, at: clock });
    }
    expect(sent.map((s) => Number(s.sequence))).toEqual(records(35).map((r) => Number(r.sequence)));
    // 10 at once, then a sleep of one burst's worth (50 ms) before each next burst
    expect(sleeps).toEqual([50, 50, 50]);
    for (let n = 1; n <= 35; n++) {
      // never more than rate * elapsed + one burst
      const at = sent[n - 1]!.at;
      expect(n).toBeLessThanOrEqual(Math.floor((rate * at) / 1000) + burstOf(rate));
    }
  });

  it("never sleeps while the clock gives it tokens", async () => {
    let clock = 0;
    let slept = 0;
    let n = 0;
    for await (const _ of paced(records(100), {
      rate: 1000,
      now: () => {
        clock += 2; // 2 ms pass between records: 500 per second, half the rate
        return clock;
      },
      sleep: async () => {
        slept += 1;
      },
    }))
      n += 1;
    expect(n).toBe(100);
    expect(slept).toBe(0);
  });
});

describe("replayRequestTopic", () => {
  const config = (mqtt: Record<string, unknown>, gateway: Record<string, unknown>) =>
    ({ mqtt, gateway }) as unknown as Parameters<typeof replayRequestTopic>[0];

  it("is <base>/<site>/cmd/<gateway id>/replay, lower case, base levels kept", () => {
    expect(
      replayRequestTopic(
        config({ base_topic: "Factory/Plant" }, { id: "Line1-Edge", site: "Berlin" }),
      ),
    ).toBe("factory/plant/berlin/cmd/line1-edge/replay");
  });

  it("leaves out the site level when there is no site, and cannot gain a level or a wildcard", () => {
    expect(replayRequestTopic(config({ base_topic: "plant" }, { id: "edge" }))).toBe(
      "plant/cmd/edge/replay",
    );
    expect(replayRequestTopic(config({ base_topic: "plant" }, { id: "edge", site: "a/b #" }))).toBe(
      "plant/a_b__/cmd/edge/replay",
    );
  });
});
