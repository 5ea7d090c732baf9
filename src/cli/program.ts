/**
 * The command line: one commander program, one file per sub-command under commands/.
 *
 * Only the sub-command asked for is loaded: `plc2mqtt events ...` does not load the gateway,
 * the drivers, mqtt or the simulators (measured: loading every command took 0.70-0.79 s before
 * the first line of work, `events` alone 0.35-0.42 s; the daemon is ready sooner too). Help,
 * --version and anything that is not a known sub-command load them all, so the help lists
 * every command and commander's own errors stay as they are.
 */
import { Command, CommanderError } from "commander";
import { exitCodeFor, printError } from "./exit.ts";
import { VERSION } from "./version.ts";

type Register = (program: Command) => void;

/** Each sub-command's registration, in the order the help lists them. */
const COMMANDS: Record<string, () => Promise<Register[]>> = {
  run: async () => [(await import("./commands/run.ts")).registerRun],
  demo: async () => [(await import("./commands/demo.ts")).registerDemo],
  validate: async () => [(await import("./commands/validate.ts")).registerValidate],
  read: async () => [(await import("./commands/read.ts")).registerRead],
  events: async () => {
    const [events, verify] = await Promise.all([
      import("./commands/events.ts"),
      import("./commands/events-verify.ts"),
    ]);
    return [events.registerEvents, verify.registerEventsVerify];
  },
  replay: async () => [(await import("./commands/replay.ts")).registerReplay],
  browse: async () => [(await import("./commands/browse.ts")).registerBrowse],
  pki: async () => [(await import("./commands/pki.ts")).registerPki],
  simulate: async () => [(await import("./commands/simulate.ts")).registerSimulate],
  schema: async () => [(await import("./commands/schema.ts")).registerSchema],
};

/** The sub-command argv names (argv[2]), or undefined: then every command is registered. */
function commandNamed(argv: readonly string[]): string | undefined {
  const name = argv[2];
  return name !== undefined && Object.hasOwn(COMMANDS, name) ? name : undefined;
}

/** The program with the sub-command argv names registered, or all of them. */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command("plc2mqtt")
    .description("Edge gateway: PLC tags over Modbus and OPC UA to durable events on MQTT")
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  const named = commandNamed(argv);
  const loads = named !== undefined ? [COMMANDS[named]!] : Object.values(COMMANDS);
  for (const registers of await Promise.all(loads.map((load) => load()))) {
    for (const register of registers) register(program);
  }
  return program;
}

/** Runs the CLI; the only place that sets the process exit code. */
export async function runCli(argv: readonly string[]): Promise<void> {
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv as string[]);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    printError(err);
    process.exitCode = exitCodeFor(err);
  }
}
