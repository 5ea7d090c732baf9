/**
 * The daemon's V8 heap settings (issue 12: memory that stays flat). Left to itself, V8 sizes
 * its heap for the machine, not for the gateway: on an edge PC with a few GiB it lets the
 * young generation grow to 64 MiB per semi-space and the old generation to several times what
 * is live before collecting it. At 10k events/s that held 330-410 MB RSS, climbing, for some
 * 37 MB of live data. Three flags bound it, measured at 1,000 registers (README, Performance):
 *
 * - `--max-semi-space-size=8`: a young generation of 16 MiB; a V8 setting of heap creation,
 *   so `plc2mqtt run` starts Node.js again with it (process.execve: the same process id, so
 *   systemd and whoever started it see nothing of it), before any module of the gateway is
 *   loaded;
 * - `--heap-growing-percent=50`: after a full collection the old generation may grow by half
 *   of what is live before the next one (V8's default lets it reach up to 4 times).
 * - `--no-allocation-site-pretenuring`: V8 watches which places in the code make objects that
 *   survive a young collection and, past a threshold, makes theirs in the old generation from
 *   then on. It had chosen so for the journal's records (99.5 % of them were made old at 1,000
 *   registers, where each lives some 50 ms): each died old, and its payload, made young, was
 *   kept by it and moved to the old generation as well. That was 3.3 MB/s promoted and a full
 *   collection every 2-3 s; without it, 0.04 MB/s and none in a 20 s window, and 9 MB less RSS
 *   (README, Performance).
 *
 * A flag already given (on the command line or in NODE_OPTIONS, either spelling) is the user's
 * and is kept; PLC2MQTT_HEAP_DEFAULTS=off leaves V8's own defaults. A process started with a
 * debugger flag (--inspect...) is not started again: its inspector's address would change
 * under the debugger; it gets the flags V8 takes at runtime only.
 */
import { setFlagsFromString } from "node:v8";

/** The flags and their values (none: a boolean flag, given as it stands). */
export const HEAP_FLAGS: readonly (readonly [flag: string, value?: string])[] = [
  ["--max-semi-space-size", "8"],
  ["--heap-growing-percent", "50"],
  ["--no-allocation-site-pretenuring"],
];

/** Those V8 reads when it uses them, so that setting them in a running process works. */
const RUNTIME_FLAGS = new Set(["--heap-growing-percent", "--allocation-site-pretenuring"]);

/** Node.js flags that open an inspector (a debugger attaches by its address). */
const INSPECTOR = /^--(?:inspect|inspect-brk|inspect-wait|debug|debug-brk)(?:=|$)/;

/** The environment variable that turns the defaults off (value `off`). */
export const HEAP_DEFAULTS_ENV = "PLC2MQTT_HEAP_DEFAULTS";

/** The boolean flags of HEAP_FLAGS by their names without `no-`. */
const BOOLEAN_FLAGS = new Set(
  HEAP_FLAGS.filter(([, value]) => value === undefined).map(([flag]) =>
    flag.replace(/^--no-/, "--"),
  ),
);

/**
 * V8 takes `_` and `-` alike in a flag's name, and `--no-flag` or `--noflag` for a boolean
 * flag off: a boolean flag of ours is named without its `no-`, so that either way counts.
 */
function flagName(arg: string): string {
  const name = arg.split("=")[0]!.replaceAll("_", "-");
  const off = /^--no-?(.+)$/.exec(name);
  return off && BOOLEAN_FLAGS.has(`--${off[1]}`) ? `--${off[1]}` : name;
}

/** The Node.js arguments and those of NODE_OPTIONS. */
function givenArgs(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  return [...execArgv, ...(nodeOptions ?? "").split(/\s+/)].filter((a) => a !== "");
}

/** The heap flags (`--flag=value`) neither the Node.js arguments nor NODE_OPTIONS give. */
export function missingHeapFlags(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[] {
  const given = new Set(givenArgs(execArgv, nodeOptions).map(flagName));
  return HEAP_FLAGS.filter(([flag]) => !given.has(flagName(flag))).map(([flag, value]) =>
    value === undefined ? flag : `${flag}=${value}`,
  );
}

/**
 * For `run`: starts this process again with the heap flags it lacks, in place (never returns
 * then). Does nothing when they are all there or when turned off. Where the process is not
 * started again (a debugger flag, process.execve missing or failing), the flags V8 takes at
 * runtime are set in this one.
 */
export function applyHeapBudget(): void {
  if (process.env[HEAP_DEFAULTS_ENV] === "off") return;
  const nodeOptions = process.env.NODE_OPTIONS;
  const missing = missingHeapFlags(process.execArgv, nodeOptions);
  if (missing.length === 0) return;
  const debugged = givenArgs(process.execArgv, nodeOptions).some((a) => INSPECTOR.test(a));
  if (!debugged && typeof process.execve === "function") {
    try {
      process.execve(
        process.execPath,
        [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)],
        process.env,
      );
    } catch {
      // not replaced: run as we are
    }
  }
  for (const flag of missing) if (RUNTIME_FLAGS.has(flagName(flag))) setFlagsFromString(flag);
}
