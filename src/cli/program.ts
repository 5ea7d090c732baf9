/** The command line: one commander program, one file per sub-command under commands/. */
import { Command, CommanderError } from "commander";
import { registerBrowse } from "./commands/browse.ts";
import { registerDemo } from "./commands/demo.ts";
import { registerEvents } from "./commands/events.ts";
import { registerEventsVerify } from "./commands/events-verify.ts";
import { registerPki } from "./commands/pki.ts";
import { registerRead } from "./commands/read.ts";
import { registerReplay } from "./commands/replay.ts";
import { registerRun } from "./commands/run.ts";
import { registerSchema } from "./commands/schema.ts";
import { registerSimulate } from "./commands/simulate.ts";
import { registerValidate } from "./commands/validate.ts";
import { exitCodeFor, printError } from "./exit.ts";
import { VERSION } from "./version.ts";

export function buildProgram(): Command {
  const program = new Command("plc2mqtt")
    .description("Edge gateway: PLC tags over Modbus and OPC UA to durable events on MQTT")
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  registerRun(program);
  registerDemo(program);
  registerValidate(program);
  registerRead(program);
  registerEvents(program);
  registerEventsVerify(program);
  registerReplay(program);
  registerBrowse(program);
  registerPki(program);
  registerSimulate(program);
  registerSchema(program);
  return program;
}

/** Runs the CLI; the only place that sets the process exit code. */
export async function runCli(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
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
