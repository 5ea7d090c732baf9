/**
 * The OPC UA load: a node-opcua server with `--items` N Double variables
 * (nsu=urn:plc2mqtt:bench;s=d<i>), all written every `--period` ms (setValueFromSource, value
 * k + i/1000 at tick k). Security None, anonymous. The bundled simulator (simulators/opcua) has
 * a fixed test-stand model of a few dozen variables, so it cannot offer 10,000 items; this
 * server borrows its certificate store setup and nothing else. It counts the changes it managed
 * to write: node-opcua may not sustain N x 10 per second, and the figures say so.
 */
import { parseArgs } from "node:util";
import {
  DataType,
  MessageSecurityMode,
  OPCUAServer,
  SecurityPolicy,
  StatusCodes,
  type UAVariable,
  Variant,
} from "node-opcua";
import { APPLICATION_URI, openStores } from "../../../simulators/opcua/pki.ts";
import { serve } from "../e2e/child.ts";

const { values: opts } = parseArgs({
  options: {
    items: { type: "string", default: "10000" },
    period: { type: "string", default: "100" },
    pki: { type: "string" },
  },
});
const N = Number(opts.items);
const PERIOD = Number(opts.period);

const opcua = await import("node-opcua");
const stores = await openStores(opcua, opts.pki!, "127.0.0.1", true);
const server = new OPCUAServer({
  port: 0,
  host: "127.0.0.1",
  hostname: "127.0.0.1",
  serverCertificateManager: stores.server,
  userCertificateManager: stores.user,
  securityModes: [MessageSecurityMode.None],
  securityPolicies: [SecurityPolicy.None],
  allowAnonymous: true,
  serverInfo: {
    applicationUri: APPLICATION_URI,
    productUri: APPLICATION_URI,
    applicationName: { text: "plc2mqtt bench OPC UA load", locale: "en" },
  },
  serverCapabilities: { maxMonitoredItemsPerSubscription: 100_000, maxMonitoredItems: 1_000_000 },
});
await server.initialize();
const addressSpace = server.engine.addressSpace!;
const ns = addressSpace.registerNamespace("urn:plc2mqtt:bench");
const folder = ns.addFolder(addressSpace.rootFolder.objects, { browseName: "Bench" });
const variables: UAVariable[] = [];
for (let i = 0; i < N; i++) {
  const v = ns.addVariable({
    componentOf: folder,
    browseName: `d${i}`,
    nodeId: `s=d${i}`,
    dataType: "Double",
    minimumSamplingInterval: 0,
    accessLevel: "CurrentRead",
    userAccessLevel: "CurrentRead",
  });
  v.setValueFromSource(
    new Variant({ dataType: DataType.Double, value: i / 1000 }),
    StatusCodes.Good,
  );
  variables.push(v);
}
await server.start();
const port = server.endpoints[0]!.port;

const st = { ticks: 0, changes: 0, maxLateMs: 0, lastTickMs: 0 };
const t0 = Math.ceil(Date.now() / PERIOD) * PERIOD + PERIOD;
let last = 0;
let timer: NodeJS.Timeout | undefined;
function loop(): void {
  const k = Math.floor((Date.now() - t0) / PERIOD);
  if (k > last) {
    const started = performance.now();
    st.maxLateMs = Math.max(st.maxLateMs, Date.now() - (t0 + k * PERIOD));
    const now = new Date();
    for (let i = 0; i < N; i++)
      variables[i]!.setValueFromSource(
        new Variant({ dataType: DataType.Double, value: k + i / 1000 }),
        StatusCodes.Good,
        now,
      );
    st.changes += N;
    st.ticks++;
    st.lastTickMs = performance.now() - started;
    last = k;
  }
  timer = setTimeout(loop, Math.max(0, t0 + (last + 1) * PERIOD - Date.now()));
}
timer = setTimeout(loop, Math.max(0, t0 - Date.now()));

serve(
  { port, pid: process.pid },
  (what) => {
    if (what === "counts") return { ...st, time: Date.now() };
    throw new Error(`unknown question ${what}`);
  },
  async () => {
    clearTimeout(timer);
    await server.shutdown(0);
  },
);
