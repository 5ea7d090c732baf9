/**
 * The daemon's V8 heap settings (issue 12, memory that stays flat; src/cli/heap-budget.ts):
 * `plc2mqtt run` starts Node.js again in place with --max-semi-space-size=8,
 * --heap-growing-percent=50 and --no-allocation-site-pretenuring unless they are given, keeps
 * a flag the user gave, and leaves V8's defaults with PLC2MQTT_HEAP_DEFAULTS=off. Checked on
 * the built CLI as a real process: its command line as the kernel shows it (/proc/<pid>/cmdline),
 * under the pid it was started as.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { missingHeapFlags } from "../../src/cli/heap-budget.ts";
import { startDaemon } from "../service/support.ts";
import { freePort } from "../support/mosquitto.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("missingHeapFlags", () => {
  it("names the flags neither the arguments nor NODE_OPTIONS give, in either spelling", () => {
    expect(missingHeapFlags([], undefined)).toEqual([
      "--max-semi-space-size=8",
      "--heap-growing-percent=50",
      "--no-allocation-site-pretenuring",
    ]);
    expect(missingHeapFlags(["--max-semi-space-size=16"], undefined)).toEqual([
      "--heap-growing-percent=50",
      "--no-allocation-site-pretenuring",
    ]);
    expect(missingHeapFlags([], "--inspect  --max_semi_space_size=2")).toEqual([
      "--heap-growing-percent=50",
      "--no-allocation-site-pretenuring",
    ]);
    // a boolean flag counts as given whichever way it is set
    for (const given of [
      "--allocation-site-pretenuring",
      "--no-allocation-site-pretenuring",
      "--noallocation_site_pretenuring",
    ])
      expect(
        missingHeapFlags(["--heap_growing_percent=10", given], "--max-semi-space-size=4"),
      ).toEqual([]);
  });
});

describe("plc2mqtt run sets the heap of its own process", () => {
  let dir: string;
  let config: string;
  let http: number;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "plc2mqtt-heap-budget-"));
    http = await freePort();
    const broker = await freePort(); // nobody listens: the gateway keeps trying, and runs
    config = join(dir, "g.yaml");
    writeFileSync(
      config,
      `version: 1
gateway: { id: heap-1, data_dir: ${join(dir, "data")} }
mqtt: { url: "mqtt://127.0.0.1:${broker}", reconnect_min: 1s, reconnect_max: 1s }
http: { listen: "127.0.0.1:${http}" }
devices: []
`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The running gateway's Node.js arguments (before the script), once it answers /healthz. */
  async function nodeArgsOf(
    env: NodeJS.ProcessEnv,
    nodeArgs: readonly string[] = [],
  ): Promise<string[]> {
    const daemon = startDaemon(["run", "-c", config], {
      env: { NODE_OPTIONS: undefined, PLC2MQTT_HEAP_DEFAULTS: undefined, ...env },
      nodeArgs,
    });
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const up = await fetch(`http://127.0.0.1:${http}/healthz`).then(
          () => true,
          () => false,
        );
        if (up) break;
        if (Date.now() > deadline || daemon.child.exitCode !== null)
          throw new Error(`the gateway did not come up: ${daemon.stdout()}${daemon.stderr()}`);
        await sleep(100);
      }
      // the process started is the one running (replaced in place, not a child)
      const argv = readFileSync(`/proc/${daemon.child.pid}/cmdline`, "utf8").split("\0");
      const script = argv.findIndex((a) => a.endsWith("main.js"));
      expect(script).toBeGreaterThan(0);
      expect(argv.slice(script + 1, script + 4)).toEqual(["run", "-c", config]);
      expect(await daemon.stop()).toBe(0);
      return argv.slice(1, script);
    } finally {
      await daemon.kill();
    }
  }

  it("adds the flags when none is given", async () => {
    const args = await nodeArgsOf({});
    expect(args).toContain("--max-semi-space-size=8");
    expect(args).toContain("--heap-growing-percent=50");
    expect(args).toContain("--no-allocation-site-pretenuring");
  });

  it("keeps a flag given in NODE_OPTIONS and adds only the others", async () => {
    const args = await nodeArgsOf({ NODE_OPTIONS: "--max-semi-space-size=16" });
    expect(args.filter((a) => a.startsWith("--max-semi-space-size"))).toEqual([]);
    expect(args).toContain("--heap-growing-percent=50");
  });

  it("leaves V8's defaults with PLC2MQTT_HEAP_DEFAULTS=off", async () => {
    const args = await nodeArgsOf({ PLC2MQTT_HEAP_DEFAULTS: "off" });
    expect(args).toEqual([]);
  });

  it("is not started again under a debugger flag: the inspector's address stays valid", async () => {
    const args = await nodeArgsOf({}, ["--inspect=127.0.0.1:0"]);
    expect(args).toEqual(["--inspect=127.0.0.1:0"]);
  });
});
