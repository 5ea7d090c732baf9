/**
 * The OPC UA simulator's lifecycle and schedule: restart on the same port keeps values,
 * a renumbered namespace keeps its URI at a new index, the seeded schedule is deterministic
 * however time is advanced, and close() leaves nothing open (in-process handles, and a child
 * process that must exit by itself).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { AttributeIds, VariableIds } from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STAND_VARIABLES, startOpcuaSimulator } from "../../simulators/opcua/index.ts";
import type { SimValue } from "../../simulators/opcua/model.ts";
import { TestStandSchedule } from "../../simulators/opcua/schedule.ts";
import { expectHandlesBackTo, openHandles } from "../support/resources.ts";
import { connect, makePki, nodeId, type Pki, readValue } from "./helpers.ts";

const pki: Pki = makePki();

beforeAll(async () => {
  // Creates the server certificate once for the whole file.
  const first = await startOpcuaSimulator({ pkiDir: pki.simPki });
  await pki.clientStore(first.serverCertificateFile);
  await first.close();
});

afterAll(() => pki.cleanup());

function replay(seed: number, steps: readonly number[]): [string, SimValue][] {
  const log: [string, SimValue][] = [];
  const schedule = new TestStandSchedule(seed, (name, value) => log.push([name, value]));
  for (const ms of steps) schedule.advance(ms);
  return log;
}

describe("OPC UA simulator: schedule", () => {
  it("gives the same values for the same seed and total time, however advance() is split", () => {
    const whole = replay(7, [60_000]);
    const pieces = replay(
      7,
      Array.from({ length: 1200 }, () => 50),
    );
    const odd = replay(7, [33, 4_967, 1, 54_999]);
    expect(pieces).toEqual(whole);
    expect(odd).toEqual(whole);
    expect(replay(8, [60_000])).not.toEqual(whole);
  });

  it("runs a test cycle: new serial, running, result with a ResultReady pulse, stopped", () => {
    const values = new Map<string, SimValue>();
    const ready: boolean[] = [];
    const schedule = new TestStandSchedule(7, (name, value) => {
      values.set(name, value);
      if (name === "ResultReady") ready.push(value as boolean);
    });
    // Find a cycle that is not a fault cycle (seeded, so the same one every run).
    let cycle = 0;
    do {
      schedule.advance(cycle === 0 ? 100 : 5_000);
      cycle += 1;
    } while (values.get("MachineState") === 2);
    expect(values.get("SerialNumber")).toBe(`SN-7-${cycle}`);
    expect(values.get("MachineState")).toBe(1);
    expect(values.get("Result")).toBe(0);
    schedule.advance(3_900); // step 40: the test completes
    expect([1, 2]).toContain(values.get("Result"));
    expect(values.get("ResultReady")).toBe(true);
    expect(values.get("Curve")).toHaveLength(16);
    schedule.advance(200);
    expect(values.get("ResultReady")).toBe(false);
    schedule.advance(300);
    expect(values.get("MachineState")).toBe(0);
    expect(ready.slice(-2)).toEqual([true, false]);
  });

  it("serves the same values from two simulators with the same seed", async () => {
    const a = await startOpcuaSimulator({ pkiDir: pki.simPki, seed: 11 });
    const b = await startOpcuaSimulator({ pkiDir: pki.simPki, seed: 11 });
    try {
      a.advance(23_000);
      for (let i = 0; i < 23; i++) b.advance(1_000);
      const store = await pki.clientStore(a.serverCertificateFile);
      const ca = await connect(a, store);
      const cb = await connect(b, store);
      try {
        for (const spec of STAND_VARIABLES) {
          const [va, vb] = await Promise.all([
            readValue(ca.session, nodeId(a, spec.name)),
            readValue(cb.session, nodeId(b, spec.name)),
          ]);
          const plain = (v: unknown) => (v instanceof Float64Array ? [...v] : v);
          expect(plain(va.value.value), spec.name).toEqual(plain(vb.value.value));
          expect(plain(va.value.value), spec.name).toEqual(a.get(spec.name));
        }
      } finally {
        await ca.close();
        await cb.close();
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("OPC UA simulator: restart and close", () => {
  it("restarts on the same port with its values, and renumbers the namespace on request", async () => {
    const sim = await startOpcuaSimulator({ pkiDir: pki.simPki });
    const store = await pki.clientStore(sim.serverCertificateFile);
    try {
      const { port, endpointUrl } = sim;
      sim.set("BatchId", "B-RESTART");
      await sim.restart();
      expect(sim.port).toBe(port);
      expect(sim.endpointUrl).toBe(endpointUrl);
      const index = sim.namespaceIndex;
      let c = await connect(sim, store);
      expect((await readValue(c.session, nodeId(sim, "BatchId"))).value.value).toBe("B-RESTART");
      await c.close();

      await sim.restart({ renumberNamespace: true });
      expect(sim.port).toBe(port);
      expect(sim.namespaceIndex).not.toBe(index);
      c = await connect(sim, store);
      try {
        const array = await c.session.read({
          nodeId: `i=${VariableIds.Server_NamespaceArray}`,
          attributeId: AttributeIds.Value,
        });
        const uris = array.value.value as string[];
        expect(uris[sim.namespaceIndex]).toBe(sim.namespaceUri);
        expect(uris.indexOf(sim.namespaceUri)).toBe(sim.namespaceIndex);
        const old = await readValue(c.session, `ns=${index};s=TestStand.BatchId`);
        expect(old.statusCode.name).toBe("BadNodeIdUnknown");
        expect((await readValue(c.session, nodeId(sim, "BatchId"))).value.value).toBe("B-RESTART");
      } finally {
        await c.close();
      }
    } finally {
      await sim.close();
    }
  });

  it("close() is idempotent and leaves no sockets or timers in this process", async () => {
    const baseline = openHandles();
    const sim = await startOpcuaSimulator({ pkiDir: pki.simPki, tickMs: 20 });
    const c = await connect(sim, await pki.clientStore(sim.serverCertificateFile));
    expect((await readValue(c.session, nodeId(sim, "BatchId"))).statusCode.name).toBe("Good");
    await c.close();
    await Promise.all([sim.close(), sim.close()]);
    await sim.close();
    await expectHandlesBackTo(baseline);
  });

  it("lets a child process that started, served and closed it exit by itself", async () => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL("./close-child.ts", import.meta.url)), pki.simPki, pki.dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    const guard = setTimeout(() => child.kill("SIGKILL"), 25_000);
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    clearTimeout(guard);
    expect(out).toContain("closed");
    expect(code, out).toBe(0);
  });
});
