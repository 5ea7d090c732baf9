import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import { type PtyPair, startPtyPair } from "../support/tools.ts";
import { driverContract } from "./contract.ts";
import { modbusDevice, setKnownValues } from "./modbus-fixture.ts";

driverContract("Modbus TCP against the simulator", async () => {
  const sim = await startModbusSimulator({ port: 0 });
  const device = modbusDevice({ protocol: "modbus-tcp", host: "127.0.0.1", port: sim.port });
  return {
    driver: () => createDriver(device),
    setValues: async (round) => setKnownValues(sim, round),
    dropServer: async () => sim.dropConnections(),
    close: () => sim.close(),
  };
});

driverContract("Modbus RTU over TCP against the simulator", async () => {
  const sim = await startModbusSimulator({ port: 0, framing: "rtu-over-tcp", units: [1, 2] });
  const device = modbusDevice({
    protocol: "modbus-rtu-over-tcp",
    host: "127.0.0.1",
    port: sim.port,
  });
  return {
    driver: () => createDriver(device),
    setValues: async (round) => setKnownValues(sim, round),
    dropServer: async () => sim.dropConnections(),
    close: () => sim.close(),
  };
});

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

// The same device on an I/O thread of its own (io_thread: true, modbus/io-thread.ts): the
// contract holds across the thread boundary, values and errors included.
driverContract("Modbus TCP on its own I/O thread", async () => {
  const sim = await startModbusSimulator({ port: 0 });
  const device = modbusDevice({
    protocol: "modbus-tcp",
    host: "127.0.0.1",
    port: sim.port,
    io_thread: true,
  });
  return {
    driver: () => createDriver(device),
    setValues: async (round) => setKnownValues(sim, round),
    dropServer: async () => sim.dropConnections(),
    close: () => sim.close(),
  };
});

driverContract("Modbus RTU over TCP on its own I/O thread", async () => {
  const sim = await startModbusSimulator({ port: 0, framing: "rtu-over-tcp", units: [1, 2] });
  const device = modbusDevice({
    protocol: "modbus-rtu-over-tcp",
    host: "127.0.0.1",
    port: sim.port,
    io_thread: true,
  });
  return {
    driver: () => createDriver(device),
    setValues: async (round) => setKnownValues(sim, round),
    dropServer: async () => sim.dropConnections(),
    close: () => sim.close(),
  };
});
