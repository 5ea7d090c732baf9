/**
 * The PUBACK filter between the broker's socket and mqtt.js (src/publish/ack-filter.ts): the
 * plain PUBACKs of publish()'s packet ids are taken, every other byte reaches mqtt.js unchanged
 * and in order, whatever the chunks the socket delivers; and over a real mosquitto, publish()'s
 * acknowledgements never reach mqtt.js's parser while its own packets still do.
 */
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckFilter } from "../../src/publish/ack-filter.ts";
import {
  type ConnectOptions,
  openConnection,
  parseBrokerUrl,
} from "../../src/publish/connection.ts";
import { FAST_IDS_MAX } from "../../src/publish/publish-packet.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";

const hex = (s: string) => Buffer.from(s.replace(/ /g, ""), "hex");

/** An incoming QoS 0 PUBLISH of `size` payload bytes. */
function publishPacket(size: number): Buffer {
  const body = Buffer.concat([hex("0003 612f62"), Buffer.alloc(size, 0x41)]);
  const header = [0x30];
  for (let len = body.length; ; len >>= 7) {
    header.push((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
    if (len <= 0x7f) break;
  }
  return Buffer.concat([Buffer.from(header), body]);
}

/** Packets in order, each marked taken (a plain PUBACK of a fast id) or passed on. */
const STREAM: { bytes: Buffer; taken?: [number, number] }[] = [
  { bytes: hex("40 02 0001"), taken: [1, 0] }, // MQTT 3.1.1, or MQTT 5 success in short form
  { bytes: hex("d0 00") }, // PINGRESP
  { bytes: hex("40 03 0002 00"), taken: [2, 0] }, // success with its reason code
  { bytes: publishPacket(300) }, // a command for the gateway, larger than a chunk
  { bytes: hex("40 03 0003 10"), taken: [3, 0x10] }, // no matching subscribers
  { bytes: hex("40 03 0004 87") }, // not authorized: mqtt.js judges refusals
  { bytes: hex("40 04 0005 00 00") }, // with a property length: mqtt.js
  { bytes: hex(`40 02 ${(FAST_IDS_MAX + 1).toString(16)}`) }, // mqtt.js's own id
  { bytes: hex("40 02 0000") }, // id 0 is no packet id
  { bytes: publishPacket(5) },
  // plain, but after PUBACKs of fast ids that went on to mqtt.js (the refusal and the one with
  // properties) and that mqtt.js has not parsed yet: it goes the same way, to keep the order
  { bytes: hex(`40 02 ${FAST_IDS_MAX.toString(16)}`) },
];
const ALL = Buffer.concat(STREAM.map((p) => p.bytes));
const PASSED = Buffer.concat(STREAM.filter((p) => !p.taken).map((p) => p.bytes));
const TAKEN = STREAM.flatMap((p) => (p.taken ? [p.taken] : []));

/** Runs `chunks` through a filter over an in-process socket; what was taken and passed on. */
async function run(chunks: Buffer[], onAck = true) {
  const socket = new PassThrough();
  const filter = new AckFilter(socket);
  const taken: [number, number][] = [];
  if (onAck) filter.onAck = (id, code) => taken.push([id, code]);
  const passed: Buffer[] = [];
  filter.on("data", (chunk: Buffer) => passed.push(chunk));
  for (const chunk of chunks) socket.write(chunk);
  await new Promise((resolve) => setImmediate(resolve));
  return { taken, passed: Buffer.concat(passed) };
}

/**
 * As the connection feeds it (onread): every chunk in one buffer, overwritten after each
 * receive(), so whatever the filter kept or passed on without copying comes out corrupted.
 */
async function runReused(chunks: Buffer[], onAck = true) {
  const filter = new AckFilter(new PassThrough());
  const taken: [number, number][] = [];
  if (onAck) filter.onAck = (id, code) => taken.push([id, code]);
  const passed: Buffer[] = [];
  filter.on("data", (chunk: Buffer) => passed.push(chunk));
  const buffer = Buffer.alloc(65_536);
  for (const chunk of chunks) {
    chunk.copy(buffer);
    filter.receive(buffer.subarray(0, chunk.length));
    buffer.fill(0xee);
  }
  await new Promise((resolve) => setImmediate(resolve));
  return { taken, passed: Buffer.concat(passed) };
}

describe("the PUBACK filter", () => {
  it("takes the plain PUBACKs of fast ids and passes every other byte on, in one chunk", async () => {
    const { taken, passed } = await run([ALL]);
    expect(taken).toEqual(TAKEN);
    expect(passed.toString("hex")).toBe(PASSED.toString("hex"));
  });

  it("does the same whatever the two chunks the stream is cut into", async () => {
    for (let cut = 1; cut < ALL.length; cut++) {
      const { taken, passed } = await run([ALL.subarray(0, cut), ALL.subarray(cut)]);
      expect(taken, `cut at ${cut}`).toEqual(TAKEN);
      expect(passed.toString("hex"), `cut at ${cut}`).toBe(PASSED.toString("hex"));
    }
  });

  it("does the same when the socket reads every chunk into one buffer it reuses", async () => {
    for (let cut = 1; cut < ALL.length; cut++) {
      const { taken, passed } = await runReused([ALL.subarray(0, cut), ALL.subarray(cut)]);
      expect(taken, `cut at ${cut}`).toEqual(TAKEN);
      expect(passed.toString("hex"), `cut at ${cut}`).toBe(PASSED.toString("hex"));
    }
    const bytes = await runReused([...ALL].map((b) => Buffer.from([b])));
    expect(bytes.taken).toEqual(TAKEN);
    expect(bytes.passed.toString("hex")).toBe(PASSED.toString("hex"));
    // before the connection is up everything is passed on: copied as well
    const before = await runReused([ALL.subarray(0, 7), ALL.subarray(7)], false);
    expect(before.passed.toString("hex")).toBe(ALL.toString("hex"));
  });

  it("does the same byte by byte", async () => {
    const bytes = [...ALL].map((b) => Buffer.from([b]));
    const { taken, passed } = await run(bytes);
    expect(taken).toEqual(TAKEN);
    expect(passed.toString("hex")).toBe(PASSED.toString("hex"));
  });

  it("takes nothing before the connection is up (no onAck)", async () => {
    const { taken, passed } = await run([ALL.subarray(0, 7), ALL.subarray(7)], false);
    expect(taken).toEqual([]);
    expect(passed.toString("hex")).toBe(ALL.toString("hex"));
  });

  it("takes plain PUBACKs again once mqtt.js has parsed the ones it was given", async () => {
    const socket = new PassThrough();
    const filter = new AckFilter(socket);
    const taken: number[] = [];
    filter.onAck = (id) => taken.push(id);
    const passed: Buffer[] = [];
    filter.on("data", (chunk: Buffer) => passed.push(chunk));
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    socket.write(hex("40 03 0001 97 40 02 0002")); // quota exceeded for 1, then 2 succeeds
    await tick();
    expect(taken).toEqual([]); // 2 waits behind 1's refusal, in mqtt.js
    expect(Buffer.concat(passed).toString("hex")).toBe("4003000197" + "40020002");
    filter.passedSeen(); // mqtt.js parsed 1
    socket.write(hex("40 02 0003"));
    await tick();
    expect(taken).toEqual([]); // 2 is still on its way through mqtt.js
    filter.passedSeen(); // and 2
    filter.passedSeen(); // and 3
    socket.write(hex("40 02 0004"));
    await tick();
    expect(taken).toEqual([4]);
  });

  it("pauses the socket while mqtt.js takes nothing, and resumes it when mqtt.js reads", async () => {
    const socket = new PassThrough();
    const filter = new AckFilter(socket);
    filter.onAck = () => {};
    const big = publishPacket(200_000);
    socket.write(big); // more than the filter's buffer (64 KiB), and nobody reads it
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.isPaused()).toBe(true);
    const passed: Buffer[] = [];
    filter.on("data", (chunk: Buffer) => passed.push(chunk));
    socket.write(hex("d0 00"));
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.isPaused()).toBe(false);
    expect(Buffer.concat(passed).toString("hex")).toBe(`${big.toString("hex")}d000`);
  });

  it("hands mqtt.js what it had not read yet when the socket closes, then closes", async () => {
    const socket = new PassThrough();
    const filter = new AckFilter(socket);
    filter.onAck = () => {};
    const disconnect = hex("e0 02 95 00"); // DISCONNECT, packet too large
    socket.end(Buffer.concat([publishPacket(200_000), disconnect]));
    await new Promise((resolve) => socket.once("close", resolve));
    const passed: Buffer[] = [];
    filter.on("data", (chunk: Buffer) => passed.push(chunk));
    await new Promise((resolve) => filter.once("close", resolve));
    expect(Buffer.concat(passed).subarray(-4).toString("hex")).toBe("e0029500");
  });

  it("passes everything on from a malformed remaining length, for mqtt.js to refuse", async () => {
    const bad = hex("40 ff ff ff ff 01 40 02 0001");
    const { taken, passed } = await run([hex("40 02 0009"), bad]);
    expect(taken).toEqual([[9, 0]]);
    expect(passed.toString("hex")).toBe(bad.toString("hex"));
  });
});

describe("the PUBACK filter on a real mosquitto", () => {
  let broker: Broker;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
  });
  const open = (clientId: string, extra: Partial<ConnectOptions>) =>
    openConnection(
      {
        endpoint: parseBrokerUrl(broker.url),
        clientId,
        keepaliveMs: 60_000,
        connectTimeoutMs: 5000,
        onMessage: () => {},
        ...extra,
      },
      new AbortController().signal,
    );

  it("a CONNECT mqtt.js cannot encode fails with mqtt-packet's reason, through the filter", async () => {
    const attempt = open("ack-filter-will", {
      will: { topic: "", payload: "gone", retain: false },
    });
    const err = await attempt.then(
      () => undefined,
      (e: unknown) => e as Error & { cause?: Error },
    );
    expect(err?.message).toMatch(/connect to .* failed/);
    expect(err?.message).not.toMatch(/mqtts/); // not the hint for a closed plain connection
    expect(err?.cause?.message).toBe("Invalid will topic");
  });

  it("acknowledges publish() without mqtt.js parsing its PUBACKs; mqtt.js still gets its own", async () => {
    for (const protocolVersion of [5, 4] as const) {
      const conn = await open(`ack-filter-${protocolVersion}`, { protocolVersion });
      const seenByMqttJs: number[] = [];
      // the test reaches into the connection's mqtt.js client to count what its parser sees
      const client = (conn as unknown as { client: NodeJS.EventEmitter }).client;
      client.on("packetreceive", (p: { cmd: string; messageId?: number }) => {
        if (p.cmd === "puback") seenByMqttJs.push(p.messageId ?? 0);
      });
      await Promise.all(
        Array.from({ length: 500 }, (_, i) => conn.publish(`t/${i}`, `{"i":${i}}`, false)),
      );
      await conn.subscribe("t/none"); // SUBACK: mqtt.js still parses the rest
      await conn.respond({ topic: "t/answer", payload: "{}" }); // mqtt.js's own QoS 1 PUBACK
      expect(seenByMqttJs.filter((id) => id <= FAST_IDS_MAX)).toEqual([]);
      expect(seenByMqttJs.filter((id) => id > FAST_IDS_MAX)).toHaveLength(1);
      await conn.end(2000);
    }
  });
});
