/**
 * The OPC UA simulator in a process of its own, so that a test can really hang the server with
 * SIGSTOP (and resume it with SIGCONT): `node opcua-simulator-process.ts <pki dir> [<json>]`
 * starts it on a free port, sets the variables of the optional JSON object in one PLC cycle,
 * and prints one JSON line: { endpointUrl, serverCertificateFile }. It closes the server and
 * exits when its stdin ends (the test ends it; a SIGKILL is the fallback).
 */
import { startOpcuaSimulator } from "../../simulators/opcua/index.ts";

const [pkiDir, values] = process.argv.slice(2);
if (!pkiDir) throw new Error("usage: opcua-simulator-process.ts <pki dir> [<values as JSON>]");
const sim = await startOpcuaSimulator({ pkiDir });
if (values) sim.setMany(JSON.parse(values) as Record<string, unknown>);
process.stdout.write(
  `${JSON.stringify({ endpointUrl: sim.endpointUrl, serverCertificateFile: sim.serverCertificateFile })}\n`,
);
process.stdin.resume();
process.stdin.on("end", () => {
  void sim.close().finally(() => process.exit(0));
});
