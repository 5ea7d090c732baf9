/**
 * `plc2mqtt simulate modbus` and `plc2mqtt simulate opcua`: the bundled PLC simulators on
 * their own. Each prints where it listens and what it serves (the OPC UA one also prints its
 * server certificate's path on a second line), runs until SIGINT or SIGTERM, then closes.
 * Passwords given with --user are never printed.
 */
import { join, resolve } from "node:path";
import { Command, Option } from "commander";
import type { ModbusSimulatorOptions } from "../../../simulators/modbus/index.ts";
import { startModbusSimulator } from "../../../simulators/modbus/index.ts";
import type { OpcuaServerOptions, OpcuaSimulator } from "../../../simulators/opcua/index.ts";
import { startOpcuaSimulator } from "../../../simulators/opcua/index.ts";
import { parseDuration } from "../../config/units.ts";
import { GatewayError, isGatewayError } from "../../lib/errors.ts";
import { userSimulatorPki } from "../user-data-dir.ts";

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

interface OpcuaFlags {
  host: string;
  port: string;
  pkiDir?: string;
  untrustedClients: "accept" | "fault" | "close";
  user: string[];
  anonymous: boolean;
  seed: string;
  tick: string;
}

const DEFAULT_OPCUA_PORT = 4840;

export function opcuaOptions(flags: OpcuaFlags): OpcuaServerOptions {
  const tickMs = parseDuration(flags.tick);
  if (tickMs === undefined) throw usage(`--tick ${flags.tick}: expected a duration such as 100ms`);
  const users: Record<string, string> = {};
  for (const pair of flags.user) {
    const at = pair.indexOf(":");
    if (at < 1) throw usage(`--user ${pair.split(":")[0]}:...: expected name:password`);
    users[pair.slice(0, at)] = pair.slice(at + 1);
  }
  if (!flags.anonymous && flags.user.length === 0) {
    throw usage("--no-anonymous needs at least one --user name:password");
  }
  const untrusted = flags.untrustedClients;
  return {
    host: flags.host,
    port: integer(flags.port, "--port", 0, 65_535),
    pkiDir: resolve(flags.pkiDir ?? userSimulatorPki()),
    ...(untrusted === "accept"
      ? {}
      : { trustClientCertificates: "none", refuseUntrustedClientsBy: untrusted }),
    users,
    allowAnonymous: flags.anonymous,
    seed: integer(flags.seed, "--seed", 0, 2 ** 32 - 1),
    tickMs,
  };
}

function describeOpcua(sim: OpcuaSimulator, options: OpcuaServerOptions, tick: string): string {
  const names = Object.keys(options.users ?? {});
  const login = [
    ...(options.allowAnonymous === false ? [] : ["anonymous"]),
    ...(names.length > 0 ? [`users ${names.join(",")}`] : []),
  ].join(" and ");
  return (
    `plc2mqtt OPC UA simulator: ${sim.endpointUrl}, namespace ${sim.namespaceUri} ` +
    `(ns=${sim.namespaceIndex}), security None/Sign/SignAndEncrypt, login ${login}, ` +
    `test stand (seed ${options.seed}, tick ${tick}); Ctrl-C stops`
  );
}

async function runOpcua(flags: OpcuaFlags): Promise<void> {
  const options = opcuaOptions(flags);
  const signals = signalWaiter();
  let simulator: OpcuaSimulator;
  try {
    simulator = await startOpcuaSimulator(options);
  } catch (err) {
    signals.dispose();
    if (isGatewayError(err)) throw err;
    const message = (err as Error).message.replace(/^OPC UA simulator: /, "");
    throw usage(`cannot start the OPC UA simulator: ${message}`);
  }
  process.stdout.write(`${describeOpcua(simulator, options, flags.tick)}\n`);
  process.stdout.write(
    `server certificate: ${simulator.serverCertificateFile} (a client must trust it: copy it into the client's PKI trusted/certs/)\n`,
  );
  const trusted = join(options.pkiDir, "server", "trusted", "certs");
  process.stdout.write(
    options.trustClientCertificates === "none"
      ? `client certificates: trusted in ${trusted}; an unknown one is refused (${options.refuseUntrustedClientsBy === "close" ? "connection closed" : "BadSecurityChecksFailed"}) and put in ${join(options.pkiDir, "server", "rejected")}\n`
      : "client certificates: any is accepted (--untrusted-clients fault|close refuses unknown ones)\n",
  );
  await signals.stopped;
  await simulator.close();
}

const collect = (value: string, previous: string[]) => [...previous, value];

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
  simulate.addCommand(
    new Command("opcua")
      .description("OPC UA PLC simulator: a test stand with every built-in scalar type")
      .option("--host <host>", "address to listen on (and to advertise)", "127.0.0.1")
      .option("--port <port>", "TCP port (0 = a free port)", `${DEFAULT_OPCUA_PORT}`)
      .option(
        "--pki-dir <dir>",
        "certificate stores, server certificate created once (default $XDG_DATA_HOME/plc2mqtt/opcua-simulator-pki or ~/.local/share/plc2mqtt/opcua-simulator-pki)",
      )
      .addOption(
        new Option(
          "--untrusted-clients <how>",
          "a client certificate not in <pki-dir>/server/trusted/certs: accept it, refuse it with BadSecurityChecksFailed (fault), or close the connection as open62541 does (close)",
        )
          .choices(["accept", "fault", "close"])
          .default("accept"),
      )
      .option(
        "--user <name:password>",
        "accept this user name and password (repeatable)",
        collect,
        [],
      )
      .option("--no-anonymous", "refuse anonymous sessions (needs --user)")
      .option("--seed <n>", "schedule seed: same seed, same values", "1")
      .option("--tick <duration>", "advance the schedule in real time this often", "100ms")
      .action((flags: OpcuaFlags) => runOpcua(flags)),
  );
}
