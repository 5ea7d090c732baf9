/** The real CLI, as a child process: `validate` exit codes and output, `schema` output. */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configJsonSchema } from "../../src/config/json-schema.ts";
import { FIXTURE_DIR, FIXTURE_ENV } from "./fixture-env.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["src/main.ts", ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", ...FIXTURE_ENV },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("plc2mqtt validate", () => {
  it("prints every problem with file, line and column and exits 1", async () => {
    const file = join(FIXTURE_DIR, "several-errors.yaml");
    const { code, stdout, stderr } = await run(["validate", "-c", file]);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    const lines = stderr.trimEnd().split("\n");
    expect(lines[0]).toBe(`plc2mqtt: CONFIG_INVALID: ${file}: 11 problems`);
    expect(lines).toHaveLength(12);
    expect(lines[1]).toBe(`${file}:1:10: version: Invalid input: expected 1`);
    expect(lines[2]).toBe(`${file}:2:1: colour: unknown key "colour"`);
    expect(lines[11]).toBe(
      `${file}:25:9: devices[2].id: device id "press-1" is already used by devices[0]`,
    );
  });

  it("prints one summary line and exits 0 for a valid file", async () => {
    const file = join(FIXTURE_DIR, "valid-references.yaml");
    const { code, stdout, stderr } = await run(["validate", "-c", file]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toBe(`${file}: ok: gateway edge, 1 device, 3 tags\n`);
  });
});

describe("plc2mqtt schema", () => {
  it("prints the config JSON Schema", async () => {
    const { code, stdout } = await run(["schema"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(configJsonSchema());
  });
});

describe("point 7: plc2mqtt schema --path", () => {
  it("prints the path of the package's schema file, for the $schema= line", async () => {
    const { code, stdout } = await run(["schema", "--path"]);
    expect(code).toBe(0);
    const path = stdout.trim();
    expect(path).toMatch(/\/config\/plc2mqtt\.schema\.json$/);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(configJsonSchema());
  });
});
