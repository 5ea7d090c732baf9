/**
 * `plc2mqtt simulate modbus`: the bundled Modbus PLC simulator on its own. Prints one line
 * saying where it listens and what it serves, runs until SIGINT or SIGTERM, then closes.
 */
import { Command, Option } from "commander";
import type { ModbusSimulatorOptions } from "../../../simulators/modbus/index.ts";
import { startModbusSimulator } from "../../../simulators/modbus/index.ts";
import { parseDuration } from "../../config/units.ts";
import { GatewayError, isGatewayError } from "../../lib/errors.ts";

interface ModbusFlags {
  host: string;
  port?: string;
  scenario: string;
  seed: string;
  tick: string;
  rtuSerial?: string;
  baudRate: string;
  framing: "tcp" | "rtu-over-tcp";
  units?: string;
}

const DEFAULT_PORT = 5020;

function usage(message: string): GatewayError {
  return new GatewayError("USAGE", message);
}

function integer(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw usage(`${flag} ${text}: expected an integer ${min}..${max}`);
  }
  return value;
}

export function modbusOptions(flags: ModbusFlags): ModbusSimulatorOptions {
  const tickMs = parseDuration(flags.tick);
  if (tickMs === undefined) throw usage(`--tick ${flags.tick}: expected a duration such as 100ms`);
  const serialOnly = flags.rtuSerial !== undefined && flags.port === undefined;
  const options: ModbusSimulatorOptions = {
    host: flags.host,
    framing: flags.framing,
    seed: integer(flags.seed, "--seed", 0, 2 ** 32 - 1),
    tickMs,
    recordRequests: false, // a long run must not grow
  };
  if (!serialOnly) options.port = integer(flags.port ?? `${DEFAULT_PORT}`, "--port", 0, 65_535);
  if (flags.scenario !== "none") options.scenario = flags.scenario;
  if (flags.rtuSerial !== undefined) {
    options.serialPath = flags.rtuSerial;
    options.serialBaudRate = integer(flags.baudRate, "--baud-rate", 300, 921_600);
  }
  if (flags.units !== undefined) {
    options.units = flags.units.split(",").map((u) => integer(u.trim(), "--units", 0, 255));
  }
  return options;
}

function describe(options: ModbusSimulatorOptions, port: number, tick: string): string {
  const where: string[] = [];
  if (options.port !== undefined) {
    const framing = options.framing === "rtu-over-tcp" ? "RTU over TCP" : "Modbus TCP";
    where.push(`${framing} on ${options.host}:${port}`);
  }
  if (options.serialPath !== undefined) {
    where.push(`Modbus RTU on ${options.serialPath} at ${options.serialBaudRate} baud`);
  }
  const units =
    options.units === undefined ? "every unit id" : `unit ids ${options.units.join(",")}`;
  const scenario =
    options.scenario === undefined
      ? "no scenario"
      : `scenario ${options.scenario} (seed ${options.seed}, tick ${tick})`;
  return `plc2mqtt Modbus simulator: ${where.join(" and ")}, answering ${units}, ${scenario}; Ctrl-C stops`;
}

/** `stopped` resolves on SIGINT or SIGTERM; dispose() removes the handlers. */
function signalWaiter(): { stopped: Promise<NodeJS.Signals>; dispose(): void } {
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  const dispose = () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      dispose();
      resolve(signal);
    };
  });
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return { stopped, dispose };
}

async function runModbus(flags: ModbusFlags): Promise<void> {
  const options = modbusOptions(flags);
  // Listen for signals first: one that arrives while starting still closes cleanly.
  const signals = signalWaiter();
  let simulator: Awaited<ReturnType<typeof startModbusSimulator>>;
  try {
    simulator = await startModbusSimulator(options);
  } catch (err) {
    signals.dispose();
    if (isGatewayError(err)) throw err;
    // Port in use, no permission, no such serial device: the user picks another.
    throw usage(`cannot start the Modbus simulator: ${(err as Error).message}`);
  }
  process.stdout.write(`${describe(options, simulator.port, flags.tick)}\n`);
  await signals.stopped;
  await simulator.close();
}

export function registerSimulate(program: Command): void {
  const simulate = program
    .command("simulate")
    .description("Run a bundled PLC simulator on its own (for trying the gateway without a plant)");
  simulate.addCommand(
    new Command("modbus")
      .description("Modbus TCP / RTU PLC simulator with a packaging-line scenario")
      .option("--host <host>", "address to listen on", "127.0.0.1")
      .option("--port <port>", `TCP port (default ${DEFAULT_PORT}; 0 = a free port)`)
      .option(
        "--scenario <name|path>",
        "packaging-line, a scenario YAML, or none",
        "packaging-line",
      )
      .option("--seed <n>", "scenario seed: same seed, same values", "1")
      .option("--tick <duration>", "advance the scenario in real time this often", "100ms")
      .option(
        "--rtu-serial <path>",
        "also serve Modbus RTU on this serial device (serial only unless --port is given)",
      )
      .option("--baud-rate <n>", "baud rate for --rtu-serial", "19200")
      .addOption(
        new Option("--framing <framing>", "TCP framing: MBAP or RTU frames over TCP")
          .choices(["tcp", "rtu-over-tcp"])
          .default("tcp"),
      )
      .option("--units <ids>", "comma-separated unit ids that answer (default all)")
      .action((flags: ModbusFlags) => runModbus(flags)),
  );
}
