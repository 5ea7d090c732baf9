/**
 * CPU cost of a poll's samples crossing from a Modbus I/O thread to the main thread
 * (io-thread-samples.ts), per sample: packed into columns, through a real MessagePort, unpacked
 * into TagSamples, building the samples included (issue 12: 100,000 samples a second at 10,000
 * registers). Both ends run here, in one thread. Prints one JSON line.
 *
 *   node test/bench/sample-wire-cost.ts [rounds=20000] [per=125]
 */
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import { SamplePacker, SampleUnpacker } from "../../src/drivers/modbus/io-thread-samples.ts";
import type { TagSample } from "../../src/events/sample.ts";

const rounds = Number(process.argv[2] ?? 20_000);
const per = Number(process.argv[3] ?? 125);
const { port1, port2 } = new MessageChannel();
const packer = new SamplePacker();
const unpacker = new SampleUnpacker();
const start = process.cpuUsage();
for (let k = 0; k < rounds; k++) {
  const samples: TagSample[] = [];
  for (let i = 0; i < per; i++)
    samples.push({
      device: "line1",
      tag: `r${i}`,
      value: (k + i) & 0xffff,
      quality: "good",
      readTime: k,
    });
  port1.postMessage(packer.pack(samples));
  const got = unpacker.unpack(receiveMessageOnPort(port2)?.message);
  if (got.length !== per) throw new Error(`unpacked ${got.length} of ${per}`);
}
const used = process.cpuUsage(start);
port1.close();
port2.close();
const us = (used.user + used.system) / (rounds * per);
console.log(
  JSON.stringify({ bench: "sample-wire-cost", rounds, per, us_per_sample: +us.toFixed(3) }),
);
