/**
 * External tools the integration tests run against. A missing tool fails the test with the
 * install command: these tests never skip silently.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const DEBIAN_PYTHON = "/usr/bin/python3";

export function requireTool(command: string, debianPackage: string): void {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
  } catch {
    throw new Error(`${command} is missing: apt-get install -y ${debianPackage} (see README)`);
  }
}

export function requirePymodbus(): void {
  try {
    // pymodbus' server and client import pyserial and serial_asyncio, which Debian only
    // recommends: without them the import fails although python3-pymodbus is installed.
    execFileSync(DEBIAN_PYTHON, ["-c", "import pymodbus.server.async_io, pymodbus.client"], {
      stdio: "ignore",
    });
  } catch {
    throw new Error(
      "pymodbus is missing or incomplete: apt-get install -y python3-pymodbus python3-serial python3-serial-asyncio (see README)",
    );
  }
}

export interface PtyPair {
  /** The two ends: whatever is written to one is read from the other. */
  a: string;
  b: string;
  stop(): Promise<void>;
}

/** A virtual serial cable: two linked pseudo-terminals from socat. */
export async function startPtyPair(
  dir = mkdtempSync(join(tmpdir(), "plc2mqtt-pty-")),
): Promise<PtyPair> {
  requireTool("socat", "socat");
  const a = join(dir, "a");
  const b = join(dir, "b");
  const child: ChildProcess = spawn(
    "socat",
    [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`],
    {
      stdio: "ignore",
    },
  );
  const deadline = Date.now() + 5000;
  while (!(existsSync(a) && existsSync(b))) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error("socat did not create the pty pair");
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    a,
    b,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
