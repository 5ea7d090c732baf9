/**
 * The CLI loads only the sub-command it runs (src/cli/program.ts): `plc2mqtt events` on a
 * journal does not load the gateway's packages (mqtt, modbus-serial, aedes, prom-client) or
 * the simulators', and `--help` still lists every command. Seen from inside the built CLI's
 * process: a resolve hook (test/drivers/opcua-loaded-packages.ts) records every package it
 * loads.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openJournal } from "../../src/journal/index.ts";
import { events, options } from "../journal/helpers.ts";
import { CLI, runCli } from "../support/cli.ts";

const HOOK = join(import.meta.dirname, "..", "drivers", "opcua-loaded-packages.ts");
const GATEWAY_PACKAGES = ["aedes", "modbus-serial", "mqtt", "prom-client", "serialport"];

function loadedBy(args: readonly string[], out: string): Promise<string[]> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ["--import", HOOK, CLI, ...args],
      { env: { ...process.env, LOADED_PACKAGES_OUT: out } },
      (err, _stdout, stderr) =>
        err
          ? reject(new Error(`${err.message}: ${stderr}`))
          : resolve(readFileSync(out, "utf8").split("\n").filter(Boolean)),
    ),
  );
}

describe("the CLI loads only the command it runs", () => {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-lazy-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("events loads none of the gateway's packages; --help loads every command", async () => {
    const journal = await openJournal(options(join(dir, "data")));
    await journal.append(events(3));
    await journal.close();
    const config = join(dir, "gateway.yaml");
    writeFileSync(config, `version: 1\ngateway: { id: gw-1, data_dir: ${join(dir, "data")} }\n`);

    const forEvents = await loadedBy(["events", "-c", config], join(dir, "events.txt"));
    expect(forEvents).toContain("commander");
    expect(forEvents.filter((p) => GATEWAY_PACKAGES.includes(p))).toEqual([]);

    const forHelp = await loadedBy(["--help"], join(dir, "help.txt"));
    expect(forHelp).toEqual(expect.arrayContaining(["mqtt", "aedes", "prom-client"]));
    const help = await runCli(["--help"]);
    for (const command of ["run", "demo", "validate", "read", "events", "replay", "browse"]) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command} `, "m"));
    }
  });
});
