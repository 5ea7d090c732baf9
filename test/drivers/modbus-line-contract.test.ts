/**
 * The Modbus line contract (modbus-line-contract.ts) for every framing: Modbus TCP, RTU over
 * TCP, and RTU on a serial line through a socat pty pair.
 */
import { startModbusSimulator } from "../../simulators/modbus/index.ts";
import { startPtyPair } from "../support/tools.ts";
import { modbusLineContract } from "./modbus-line-contract.ts";

modbusLineContract("Modbus TCP", async () => {
  const sim = await startModbusSimulator({ port: 0 });
  return {
    sim,
    // four in flight, as the soak: replies matched by transaction id
    link: { protocol: "modbus-tcp", host: "127.0.0.1", port: sim.port, max_in_flight: 4 },
    transactionIds: true,
    close: () => sim.close(),
  };
});

modbusLineContract("Modbus RTU over TCP", async () => {
  const sim = await startModbusSimulator({ port: 0, framing: "rtu-over-tcp", units: [1] });
  return {
    sim,
    link: { protocol: "modbus-rtu-over-tcp", host: "127.0.0.1", port: sim.port },
    transactionIds: false,
    close: () => sim.close(),
  };
});

modbusLineContract("Modbus RTU over a serial line (socat pty pair)", async () => {
  const pty = await startPtyPair();
  const sim = await startModbusSimulator({
    serialPath: pty.a,
    units: [1],
    serialBaudRate: 115200,
  });
  return {
    sim,
    link: { protocol: "modbus-rtu", serial: { path: pty.b, baud_rate: 115200, parity: "none" } },
    transactionIds: false,
    close: async () => {
      await sim.close();
      await pty.stop();
    },
  };
});
