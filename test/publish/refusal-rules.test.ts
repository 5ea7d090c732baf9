/**
 * The refusal rules as data: what each MQTT 5 PUBACK reason code does to an event, and the size
 * of a PUBLISH on the wire, cross-checked against mqtt-packet's generate() (the encoder mqtt.js
 * sends with) for both protocol versions, around the remaining-length boundaries and with
 * multi-byte UTF-8.
 */
import mqttPacket from "mqtt-packet";
import { describe, expect, it } from "vitest";
import {
  classifyPuback,
  oversize,
  packetLimit,
  publishPacketSize,
} from "../../src/publish/refusals.ts";

describe("PUBACK reason codes", () => {
  it.each([
    [0x87, "set_aside", "not_authorized", "Not authorized (reason code 0x87)"],
    [0x90, "set_aside", "topic_name_invalid", "Topic Name invalid (reason code 0x90)"],
    [0x95, "set_aside", "packet_too_large", "Packet too large (reason code 0x95)"],
    [0x99, "set_aside", "payload_format_invalid", "Payload format invalid (reason code 0x99)"],
    [0x97, "retry", undefined, "Quota exceeded (reason code 0x97)"],
    [0x89, "retry", undefined, "Server busy (reason code 0x89)"],
    [0x80, "retry_limited", undefined, "Unspecified error (reason code 0x80)"],
    [0x83, "retry_limited", undefined, "Implementation specific error (reason code 0x83)"],
    [0xa2, "retry_limited", undefined, "refused (reason code 0xa2)"],
    [0x91, "reconnect", undefined, "Packet Identifier in use (reason code 0x91)"],
  ])("0x%s: %s", (code, action, cls, text) => {
    const refusal = classifyPuback(code);
    expect(refusal.action).toBe(action);
    expect(refusal.class).toBe(cls);
    expect(refusal.text).toBe(text);
  });
});

function generated(topic: string, payload: string, protocolVersion: 4 | 5): number {
  const packet = {
    cmd: "publish" as const,
    qos: 1 as const,
    dup: false,
    retain: true,
    topic,
    payload,
    messageId: 65_535,
  };
  return mqttPacket.generate(packet, { protocolVersion }).length;
}

describe("publishPacketSize", () => {
  const topics = ["a", "plant/berlin/stamping/line-1/press-1/telemetry/temperature", "ä/ö/€/𝄞"];
  // remaining lengths around 127/128, 16383/16384 and 2097151/2097152
  const payloadSizes = [0, 1, 100, 118, 119, 120, 121, 122, 540, 16_370, 16_375, 16_380, 2_097_140];
  for (const protocolVersion of [4, 5] as const) {
    it(`matches mqtt-packet's encoding, MQTT ${protocolVersion === 5 ? "5" : "3.1.1"}`, () => {
      for (const topic of topics) {
        for (const size of payloadSizes) {
          for (const payload of ["x".repeat(size), "é".repeat(Math.floor(size / 2))]) {
            expect(publishPacketSize(topic, payload, protocolVersion), `${topic} ${size}`).toBe(
              generated(topic, payload, protocolVersion),
            );
          }
        }
      }
    });
  }
});

describe("the packet limit", () => {
  it("is the smaller of the broker's Maximum Packet Size and mqtt.max_packet_size", () => {
    expect(packetLimit({}, undefined)).toBeUndefined();
    expect(packetLimit({}, 540)).toEqual({
      bytes: 540,
      source: "the broker's Maximum Packet Size",
    });
    expect(packetLimit({ max_packet_size: 1000 }, undefined)).toEqual({
      bytes: 1000,
      source: "mqtt.max_packet_size",
    });
    expect(packetLimit({ max_packet_size: 1000 }, 540)?.bytes).toBe(540);
    expect(packetLimit({ max_packet_size: 300 }, 540)?.source).toBe("mqtt.max_packet_size");
  });

  it("lets a packet of exactly the limit through and says why one byte more is too large", () => {
    const topic = "t/x";
    const payload = "p".repeat(100);
    const exact = publishPacketSize(topic, payload, 5);
    const limit = { bytes: exact, source: "mqtt.max_packet_size" };
    expect(oversize({ topic, payload }, 5, limit)).toBeUndefined();
    expect(oversize({ topic, payload: `${payload}p` }, 5, limit)).toBe(
      `Packet too large: ${exact + 1} bytes, mqtt.max_packet_size is ${exact}`,
    );
    expect(oversize({ topic, payload }, 5, undefined)).toBeUndefined();
  });
});
