/**
 * `plc2mqtt simulate modbus` as a user runs it: a real process that prints where it listens,
 * serves mbpoll, and exits 0 on SIGTERM or SIGINT; bad flags and a busy port exit 2.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { run } from "./helpers.ts";

const main = fileURLToPath(new URL("../../src/main.ts", import.meta.url));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

/** Starts the CLI and resolves with its first stdout line and a promise of its exit code. */
async function simulate(args: string[]) {
  const child = spawn(process.execPath, [main, "simulate", "modbus", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("\n")) resolve(out.split("\n")[0]!);
    });
    child.once("exit", () => reject(new Error(`exited before printing: ${stderr}`)));
  });
  return { child, line, exited };
}

describe("plc2mqtt simulate modbus", () => {
  it("serves the packaging line until SIGTERM, then exits 0", async () => {
    const { child, line, exited } = await simulate(["--port", "0", "--seed", "5"]);
    expect(line).toMatch(
      /^plc2mqtt Modbus simulator: Modbus TCP on 127\.0\.0\.1:\d+, answering every unit id, scenario packaging-line \(seed 5, tick 100ms\)/,
    );
    const port = /:(\d+),/.exec(line)![1]!;
    const read = await run("mbpoll", [
      "-m",
      "tcp",
      "-p",
      port,
      "-0",
      "-1",
      "-r",
      "100",
      "127.0.0.1",
    ]);
    expect(read.stdout).toMatch(/\[100\]:\s+[012]\s/);
    const batch = await run("mbpoll", [
      "-m",
      "tcp",
      "-p",
      port,
      "-0",
      "-1",
      "-r",
      "200",
      "-c",
      "3",
      "-t",
      "4:hex",
      "127.0.0.1",
    ]);
    expect(batch.stdout).toMatch(/\[200\]:\s+0x4232\s+\[201\]:\s+0x3032\s+\[202\]:\s+0x362D/i);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });

  it("serves RTU over TCP without a scenario, and stops on SIGINT", async () => {
    const { child, line, exited } = await simulate([
      "--port",
      "0",
      "--framing",
      "rtu-over-tcp",
      "--scenario",
      "none",
      "--units",
      "1,2",
    ]);
    expect(line).toMatch(/RTU over TCP on 127\.0\.0\.1:\d+, answering unit ids 1,2, no scenario/);
    child.kill("SIGINT");
    expect(await exited).toBe(0);
  });

  it("exits 2 with a message for a bad flag or a port in use", async () => {
    const bad = await run(process.execPath, [main, "simulate", "modbus", "--tick", "soon"]).catch(
      (err: { code: number; stderr: string }) => err,
    );
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringMatching(/--tick soon/) });
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const busy = await run(process.execPath, [
        main,
        "simulate",
        "modbus",
        "--port",
        `${port}`,
      ]).catch((err: { code: number; stderr: string }) => err);
      expect(busy).toMatchObject({
        code: 2,
        stderr: expect.stringMatching(new RegExp(`cannot listen on 127.0.0.1:${port}`)),
      });
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
