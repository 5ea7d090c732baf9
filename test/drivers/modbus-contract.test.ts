import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import { type PtyPair, startPtyPair } from "../support/tools.ts";
import { driverContract } from "./contract.ts";
import { modbusDevice, setKnownValues } from "./modbus-fixture.ts";

/**
 * The simulator on a TCP port: Modbus TCP, or RTU frames over TCP (a serial-to-Ethernet
 * converter), with `fields` added to the device (io_thread).
 */
function overTcp(
  name: string,
  protocol: "modbus-tcp" | "modbus-rtu-over-tcp",
  fields: Record<string, unknown> = {},
) {
  driverContract(name, async () => {
    const sim = await startModbusSimulator(
      protocol === "modbus-tcp" ? { port: 0 } : { port: 0, framing: "rtu-over-tcp", units: [1, 2] },
    );
    const device = modbusDevice({ protocol, host: "127.0.0.1", port: sim.port, ...fields });
    return {
      driver: () => createDriver(device),
      setValues: async (round) => setKnownValues(sim, round),
      dropServer: async () => sim.dropConnections(),
      close: () => sim.close(),
    };
  });
}

overTcp("Modbus TCP against the simulator", "modbus-tcp");
overTcp("Modbus RTU over TCP against the simulator", "modbus-rtu-over-tcp");

/**
 * RTU on a serial line: socat links two pseudo-terminals; the simulator serves one end and the
 * driver opens the other. Dropping the server pulls the cable: socat ends (the driver's port
 * closes) and a new pair with the same names comes up, served by the same simulator memory.
 */
driverContract("Modbus RTU over a serial line (socat pty pair)", async () => {
  let pty: PtyPair = await startPtyPair();
  const dir = pty.a.slice(0, -2);
  let sim: ModbusSimulator = await startModbusSimulator({
    serialPath: pty.a,
    units: [1, 2],
    serialBaudRate: 115200,
  });
  let round = 0;
  const device = modbusDevice({
    protocol: "modbus-rtu",
    serial: { path: pty.b, baud_rate: 115200, parity: "none" },
  });
  return {
    driver: () => createDriver(device),
    setValues: async (r) => {
      round = r;
      return setKnownValues(sim, r);
    },
    dropServer: async () => {
      await sim.close();
      await pty.stop();
      pty = await startPtyPair(dir);
      sim = await startModbusSimulator({
        serialPath: pty.a,
        units: [1, 2],
        serialBaudRate: 115200,
      });
      setKnownValues(sim, round);
    },
    close: async () => {
      await sim.close();
      await pty.stop();
    },
  };
});

// The same devices on an I/O thread of their own (io_thread: true, modbus/io-thread.ts): the
// contract holds across the thread boundary, values and errors included.
overTcp("Modbus TCP on its own I/O thread", "modbus-tcp", { io_thread: true });
overTcp("Modbus RTU over TCP on its own I/O thread", "modbus-rtu-over-tcp", { io_thread: true });
