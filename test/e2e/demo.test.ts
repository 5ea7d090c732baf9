/**
 * `plc2mqtt demo`, as a new user runs it after `npm ci`: no broker installed (it embeds one),
 * events printed live, Ctrl-C stops it cleanly and leaves nothing in the temp folder (the
 * demo gets a temp folder of its own here, since the test run's TMPDIR is swept at the end).
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { spawnCli } from "../support/cli.ts";

describe("plc2mqtt demo", () => {
  it("shows live events from the simulated line and stops on Ctrl-C", async () => {
    const demoTmp = mkdtempSync(join(tmpdir(), "demo-tmp-"));
    const child = spawnCli(["demo"], { TMPDIR: demoTmp });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code) => resolve(code)),
    );
    try {
      const deadline = Date.now() + 30_000;
      while (
        !(
          /telemetry\s+packaging-line\/temperature/.test(out) &&
          /state\s+packaging-line\/machine_state/.test(out)
        )
      ) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no live events; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(out).toMatch(
        /plc2mqtt demo: simulator on 127\.0\.0\.1:\d+, broker mqtt:\/\/127\.0\.0\.1:\d+/,
      );
      expect(out).toMatch(/status\s+packaging-line\s+connected/);
      child.kill("SIGINT");
      expect(await exited).toBe(0);
      expect(out).toMatch(/stopping\.\.\./);
      expect(readdirSync(demoTmp), "left behind by the demo").toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      rmSync(demoTmp, { recursive: true, force: true });
    }
  }, 60_000);
});
