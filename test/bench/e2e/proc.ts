/**
 * CPU and memory of a process, read from outside through /proc as `top` would: CPU % of one
 * core = delta(utime + stime) / CLK_TCK / delta(wall) * 100; RSS = VmRSS of /proc/<pid>/status,
 * sampled once a second, with its least-squares slope in MB/min. Linux only.
 */
import { readFileSync } from "node:fs";
import { slope } from "./histogram.ts";

/** Clock ticks per second of /proc/<pid>/stat: 100 on every Linux the gateway targets. */
const CLK_TCK = 100;

/** utime + stime in seconds, or undefined once the process is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

export function rssMB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The 1-minute load average: printed beside every figure (other work shares the cores). */
export function loadAverage(): number {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
}

/** Whole-machine busy %, from /proc/stat between two readings. */
export function machineTicks(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1);
  const n = f.map(Number);
  const total = n.reduce((a, b) => a + b, 0);
  return { busy: total - n[3]! - n[4]!, total };
}

export interface ProcWindow {
  cpuPct: number;
  rssFirstMB: number;
  rssLastMB: number;
  rssMaxMB: number;
  rssSlopeMBPerMin: number;
  /** RSS once a second: [seconds since start, MB]. */
  rss: [number, number][];
}

/** Samples one process from `start()` to `stop()`; RSS once a second. */
export class ProcSampler {
  readonly #pid: number;
  #t0 = 0;
  #cpu0 = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #rss: [number, number][] = [];

  constructor(pid: number) {
    this.#pid = pid;
  }

  start(): void {
    this.#t0 = performance.now();
    this.#cpu0 = cpuSeconds(this.#pid) ?? 0;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 1000);
  }

  #sample(): void {
    const mb = rssMB(this.#pid);
    if (mb !== undefined) this.#rss.push([(performance.now() - this.#t0) / 1000, mb]);
  }

  stop(): ProcWindow {
    clearInterval(this.#timer);
    this.#sample();
    const wall = (performance.now() - this.#t0) / 1000;
    const cpu = (cpuSeconds(this.#pid) ?? this.#cpu0) - this.#cpu0;
    const ys = this.#rss.map(([, y]) => y);
    return {
      cpuPct: wall > 0 ? (100 * cpu) / wall : 0,
      rssFirstMB: ys[0] ?? 0,
      rssLastMB: ys.at(-1) ?? 0,
      rssMaxMB: Math.max(0, ...ys),
      rssSlopeMBPerMin:
        slope(
          this.#rss.map(([x]) => x),
          ys,
        ) * 60,
      rss: this.#rss,
    };
  }
}
