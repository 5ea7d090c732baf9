/**
 * Child process for lifecycle.test.ts: starts the simulator with real-time ticks, serves one
 * client read, closes both and returns without calling process.exit, so it exits only if
 * nothing (socket, timer, watcher) was left open. Arguments: pkiDir, test folder.
 */
import { join } from "node:path";
import { OPCUACertificateManager } from "node-opcua";
import { startOpcuaSimulator } from "../../simulators/opcua/index.ts";
import { connect, nodeId, readValue } from "./helpers.ts";

const [pkiDir, dir] = process.argv.slice(2) as [string, string];
const sim = await startOpcuaSimulator({ pkiDir, tickMs: 10 });
const store = new OPCUACertificateManager({
  rootFolder: join(dir, "client"),
  automaticallyAcceptUnknownCertificate: false,
  disableFileWatchers: true,
});
await store.initialize();
const c = await connect(sim, store, { mode: "SignAndEncrypt" });
const dv = await readValue(c.session, nodeId(sim, "MachineState"));
await c.close();
await store.dispose();
await sim.close();
process.stdout.write(`read ${dv.statusCode.name}; closed\n`);
