/**
 * The driver contract suite against the OPC UA simulator, over SignAndEncrypt (the default),
 * with every tag subscribed (the default) and with every tag polled. dropServer restarts the
 * simulator (same port, values kept).
 */
// Loading node-opcua opens one process-wide pipe handle that lives as long as the process; load
// it before the suite counts its baseline handles, so that only what the driver opens counts.
import "node-opcua";
import { createDriver } from "../../src/drivers/registry.ts";
import { driverContract } from "./contract.ts";
import { opcuaDevice, setOpcuaValues, startOpcuaFixture } from "./opcua-fixture.ts";

for (const mode of ["subscribe", "poll"] as const) {
  driverContract(`OPC UA (${mode}) against the simulator`, async () => {
    const fixture = await startOpcuaFixture();
    const device = opcuaDevice(fixture.sim.endpointUrl, { mode, poll_interval: "50ms" });
    return {
      driver: () => createDriver(device, { dataDir: fixture.dataDir }),
      setValues: async (round) => setOpcuaValues(fixture.sim, round),
      dropServer: () => fixture.sim.restart(),
      close: () => fixture.close(),
    };
  });
}
