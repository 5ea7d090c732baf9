/**
 * Messages that look like the gateway's events to the bench's subscriber (load/subscriber.ts):
 * a CloudEvents document of about `size` bytes whose `time` is when it was made, so that the
 * subscriber measures its latency as it measures the gateway's.
 */
export function payloadMaker(size: number): (i: number) => string {
  const head =
    '{"specversion":"1.0","id":"bench-ceiling","source":"plc2mqtt://bench/line1","type":"bench.ceiling","subject":"r';
  return (i) => {
    const body = `${head}${i}","time":"${new Date().toISOString()}","sequence":"${String(i).padStart(20, "0")}","datacontenttype":"application/json","data":{"pad":"`;
    const tail = `","quality":"good","value":${i & 0xffff}}}`;
    return body + "x".repeat(Math.max(0, size - body.length - tail.length)) + tail;
  };
}
