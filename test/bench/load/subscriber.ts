/**
 * The bench's MQTT subscriber: MQTT 3.1.1 on a raw socket (no library), subscribed with QoS 0
 * to `--topic`, so that it costs the shared cores as little as possible (the gateway still
 * publishes QoS 1 and gets its PUBACKs from the broker). Per message it takes, without a full
 * JSON parse, what the figures need from the CloudEvents document (the gateway's serializer
 * writes attributes in a fixed order, data last, data keys sorted, no whitespace): type,
 * subject, time, data.value and data.conflated when present. A batch
 * (application/cloudevents-batch+json, a JSON array) is parsed and counted event by event.
 *
 * Figures, cumulative (the bench subtracts two snapshots for a window):
 * - latency: receipt time minus the event's `time` (the value's read, or its OPC UA source
 *   time), in a histogram; events older than the cutoff (a backlog) go to a second one;
 * - `--registers N` (Modbus load): register a holds (k + a) & 0xffff at tick k, so each event of
 *   tag r<a> tells its tick; ticks passed over between two events of a register are changes
 *   the events did not show, less what `data.conflated` says an event stands for.
 */
import { connect } from "node:net";
import { parseArgs } from "node:util";
import { serve } from "../e2e/child.ts";
import { binOf, emptyHistogram } from "../e2e/histogram.ts";

const { values: opts } = parseArgs({
  options: {
    port: { type: "string" },
    topic: { type: "string", default: "#" },
    registers: { type: "string", default: "0" },
  },
});
const N = Number(opts.registers);
const lastTick = new Int32Array(N).fill(-1);
const now = () => performance.timeOrigin + performance.now();

const st = {
  connected: false,
  msgs: 0,
  bytes: 0,
  events: 0,
  telemetry: 0,
  backlogEvents: 0,
  conflatedEvents: 0,
  conflatedSum: 0,
  changes: 0,
  unaccounted: 0,
  repeats: 0,
  registersSeen: 0,
  undecodable: 0,
  lastReceipt: 0,
};
let cutoff = 0;
const live = emptyHistogram();
const backlog = emptyHistogram();

function onEvent(
  type: string,
  subject: string,
  time: number,
  value: number,
  conflated: number | undefined,
  t: number,
): void {
  st.events++;
  if (!(time > 0)) {
    st.undecodable++;
    return;
  }
  if (time < cutoff) {
    st.backlogEvents++;
    backlog[binOf(t - time)]!++;
  } else live[binOf(t - time)]!++;
  if (type !== "plc2mqtt.telemetry") return;
  st.telemetry++;
  if (conflated !== undefined) {
    st.conflatedEvents++;
    st.conflatedSum += conflated;
  }
  if (N === 0 || !Number.isInteger(value)) return;
  let a = 0;
  let m = 1;
  for (let i = subject.length - 1; i >= 0; i--) {
    const c = subject.charCodeAt(i);
    if (c < 48 || c > 57) break;
    a += (c - 48) * m;
    m *= 10;
  }
  if (a >= N) return;
  const k = (value - a) & 0xffff;
  const last = lastTick[a]!;
  lastTick[a] = k;
  if (last < 0) {
    st.registersSeen++;
    return;
  }
  const passed = (k - last) & 0xffff;
  if (passed === 0) {
    st.repeats++;
    return;
  }
  st.changes += passed;
  st.unaccounted += Math.max(0, passed - (conflated ?? 1));
}

/** The text of "key":"<text>" from `from` on, or "" . */
function stringField(s: string, key: string, from: number): [string, number] {
  const i = s.indexOf(key, from);
  if (i < 0) return ["", from];
  const start = i + key.length;
  const end = s.indexOf('"', start);
  return [s.slice(start, end), end];
}

function numberAfter(s: string, key: string, from: number): number | undefined {
  const i = s.indexOf(key, from);
  if (i < 0) return undefined;
  let end = i + key.length;
  while (end < s.length && s[end] !== "," && s[end] !== "}") end++;
  const n = Number(s.slice(i + key.length, end));
  return Number.isFinite(n) ? n : undefined;
}

function onPayload(s: string, t: number): void {
  if (s.charCodeAt(0) === 91 /* [ */) {
    for (const e of JSON.parse(s) as {
      type: string;
      subject: string;
      time: string;
      data?: { value?: unknown; conflated?: unknown };
    }[]) {
      const c = e.data?.conflated;
      onEvent(
        e.type,
        e.subject,
        Date.parse(e.time),
        Number(e.data?.value),
        typeof c === "number" ? c : undefined,
        t,
      );
    }
    return;
  }
  const [type, p1] = stringField(s, '"type":"', 0);
  const [subject, p2] = stringField(s, '"subject":"', p1);
  const [time, p3] = stringField(s, '"time":"', p2);
  const d = s.indexOf('"data":{', p3);
  if (type === "" || d < 0) {
    st.undecodable++;
    return;
  }
  const value = numberAfter(s, '"value":', d) ?? Number.NaN;
  onEvent(type, subject, Date.parse(time), value, numberAfter(s, '"conflated":', d), t);
}

// ---- MQTT 3.1.1, just enough: CONNECT, SUBSCRIBE, PUBLISH in (PUBACK for QoS 1), PINGREQ
function utf8(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
}
function packet(first: number, body: Buffer): Buffer {
  const len: number[] = [];
  let x = body.length;
  do {
    let digit = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) digit |= 128;
    len.push(digit);
  } while (x > 0);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}

const socket = connect({ host: "127.0.0.1", port: Number(opts.port), noDelay: true });
let pending: Buffer | null = null;
let subscribed: () => void = () => {};
const subscribedP = new Promise<void>((r) => (subscribed = r));
socket.on("connect", () => {
  socket.write(
    packet(
      0x10,
      Buffer.concat([
        utf8("MQTT"),
        Buffer.from([4, 0x02, 0, 60]),
        utf8(`bench-sub-${process.pid}`),
      ]),
    ),
  );
  socket.write(
    packet(0x82, Buffer.concat([Buffer.from([0, 1]), utf8(opts.topic!), Buffer.from([0])])),
  );
  setInterval(() => socket.write(Buffer.from([0xc0, 0])), 30_000).unref();
});
socket.on("data", (chunk: Buffer) => {
  const t = now();
  const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
  let off = 0;
  const acks: Buffer[] = [];
  for (;;) {
    if (buf.length - off < 2) break;
    let len = 0;
    let mul = 1;
    let i = off + 1;
    let complete = false;
    for (; i < buf.length && i < off + 5; i++) {
      len += (buf[i]! & 127) * mul;
      mul *= 128;
      if (!(buf[i]! & 128)) {
        complete = true;
        i++;
        break;
      }
    }
    if (!complete || buf.length - i < len) break;
    const type = buf[off]! >> 4;
    const end = i + len;
    if (type === 3) {
      const qos = (buf[off]! >> 1) & 3;
      const topicEnd = i + 2 + buf.readUInt16BE(i);
      let start = topicEnd;
      if (qos > 0) {
        acks.push(Buffer.from([0x40, 2, buf[topicEnd]!, buf[topicEnd + 1]!]));
        start += 2;
      }
      st.msgs++;
      st.bytes += end - start;
      st.lastReceipt = t;
      onPayload(buf.toString("utf8", start, end), t);
    } else if (type === 2) st.connected = true;
    else if (type === 9) subscribed();
    off = end;
  }
  pending = off < buf.length ? buf.subarray(off) : null;
  if (acks.length > 0) socket.write(Buffer.concat(acks));
});
socket.on("error", (err) => {
  console.error(`bench subscriber: ${err.message}`);
  process.exit(2);
});
socket.on("close", () => {
  console.error("bench subscriber: the broker closed the connection");
  process.exit(3);
});

await subscribedP;
serve({ pid: process.pid }, (what, arg) => {
  if (what === "counts") return { ...st };
  if (what === "snapshot") return { ...st, live, backlog };
  if (what === "cutoff") {
    cutoff = Number(arg);
    return cutoff;
  }
  throw new Error(`unknown question ${what}`);
});
