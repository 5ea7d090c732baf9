/**
 * The Modbus load: the bundled simulator (simulators/modbus) on its own process, holding
 * `--registers` N holding registers HR0..HR(N-1) of unit 1 that ALL change every `--period` ms.
 * Tick k (on a drift-free schedule: tick k is due at t0 + k * period) writes (k + a) & 0xffff
 * into register a, so every value names its tick (the subscriber counts skipped ticks from
 * it). Requests are counted at the server, as the simulator records them. `--static` keeps
 * the values still (polling load without changes).
 *
 * `unread`: changes no read saw, each tick's value of a register that no request read before
 * the next tick wrote over it (the poll phase: a register read a little early, then a little
 * late, skips a tick). Everything here runs on one thread and the simulator answers a request
 * as it records it, so a request recorded between two ticks read the earlier tick's values.
 * A tick the timer came too late to write counts as unread as well (the values name their
 * tick, so the subscriber sees it passed over). What the subscriber counts as unaccounted and
 * this does not is the gateway's own loss.
 */
import { parseArgs } from "node:util";
import { startModbusSimulator } from "../../../simulators/modbus/index.ts";
import { serve } from "../e2e/child.ts";

const { values: opts } = parseArgs({
  options: {
    registers: { type: "string", default: "1000" },
    period: { type: "string", default: "100" },
    static: { type: "boolean", default: false },
  },
});
const N = Number(opts.registers);
const PERIOD = Number(opts.period);

const sim = await startModbusSimulator({ port: 0, recordRequests: true });
const words = new Array<number>(N);
const st = {
  requests: 0,
  registersRead: 0,
  ticks: 0,
  changes: 0,
  unread: 0,
  maxLateMs: 0,
  connections: 0,
};
/** Per register, the last tick a request read it in. */
const readIn = new Float64Array(N).fill(-1);

function apply(k: number): void {
  for (let a = 0; a < N; a++) words[a] = (k + a) & 0xffff;
  sim.setRegisters(1, "HR0", words);
}
apply(0);

const t0 = Math.ceil(Date.now() / PERIOD) * PERIOD + PERIOD;
let last = 0;
let timer: NodeJS.Timeout | undefined;
function loop(): void {
  const k = Math.floor((Date.now() - t0) / PERIOD);
  if (k > last) {
    st.maxLateMs = Math.max(st.maxLateMs, Date.now() - (t0 + k * PERIOD));
    if (!opts.static) {
      takeRequests(); // read while tick `last` stood
      if (last > 0) for (let a = 0; a < N; a++) if (readIn[a] !== last) st.unread++;
      // ticks this timer came too late to write: the subscriber sees them passed over too
      st.unread += N * (k - last - 1);
      apply(k);
      st.changes += N;
    }
    st.ticks++;
    last = k;
  }
  timer = setTimeout(loop, Math.max(0, t0 + (last + 1) * PERIOD - Date.now()));
}
timer = setTimeout(loop, Math.max(0, t0 - Date.now()));

/** Counts the requests recorded since the last call; the registers they read, in tick `last`. */
function takeRequests(): void {
  for (const r of sim.requests) {
    st.requests++;
    st.registersRead += r.quantity;
    if (r.functionCode !== 3) continue;
    const end = Math.min(N, r.address + r.quantity);
    for (let a = r.address; a < end; a++) readIn[a] = last;
  }
  sim.clearRequests();
}

function counts() {
  takeRequests();
  st.connections = sim.connections;
  return { ...st, time: Date.now() };
}

serve(
  { port: sim.port, pid: process.pid },
  (what) => {
    if (what === "counts") return counts();
    throw new Error(`unknown question ${what}`);
  },
  async () => {
    clearTimeout(timer);
    await sim.close();
  },
);
