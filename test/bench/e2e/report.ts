/**
 * Figures out: one JSON object per line on stdout (scenario, metric, value, unit, and the
 * 1-minute load average when it was taken, since other work shares the cores), and at the end
 * a Markdown file with one table per scenario and the machine it ran on.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { ROOT } from "../../support/cli.ts";
import { loadAverage } from "./proc.ts";

export interface Figure {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
  load1: number;
  note?: string;
}

export class Report {
  readonly figures: Figure[] = [];
  readonly startLoad = loadAverage();
  readonly started = new Date();
  #write: (line: string) => void;

  constructor(write: (line: string) => void = (l) => process.stdout.write(l)) {
    this.#write = write;
  }

  add(scenario: string, metric: string, value: number, unit: string, note?: string): void {
    const f: Figure = {
      scenario,
      metric,
      value: Number.isFinite(value) ? Number(value.toPrecision(6)) : value,
      unit,
      load1: loadAverage(),
      ...(note === undefined ? {} : { note }),
    };
    this.figures.push(f);
    this.#write(`${JSON.stringify(f)}\n`);
  }

  markdown(): string {
    const commit = (() => {
      try {
        return execFileSync("git", ["rev-parse", "--short", "HEAD"], {
          cwd: ROOT,
          encoding: "utf8",
        }).trim();
      } catch {
        return "unknown";
      }
    })();
    const mosquitto = (() => {
      try {
        return execFileSync("/usr/sbin/mosquitto", ["-h"], { encoding: "utf8" }).split("\n")[0]!;
      } catch (err) {
        return String((err as { stdout?: string }).stdout ?? "").split("\n")[0] ?? "mosquitto";
      }
    })();
    const out = [
      `# plc2mqtt benchmark, ${this.started.toISOString()}`,
      "",
      `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}, ${mosquitto}, commit ${commit}.`,
      `Load average (1 min) at start ${this.startLoad}, at end ${loadAverage()}: other work shares the cores, so compare figures of one run.`,
      "",
    ];
    const scenarios = [...new Set(this.figures.map((f) => f.scenario))];
    for (const s of scenarios) {
      out.push(
        `## ${s}`,
        "",
        "| metric | value | unit | load 1m | note |",
        "| --- | ---: | --- | ---: | --- |",
      );
      for (const f of this.figures.filter((x) => x.scenario === s))
        out.push(`| ${f.metric} | ${f.value} | ${f.unit} | ${f.load1} | ${f.note ?? ""} |`);
      out.push("");
    }
    return out.join("\n");
  }

  writeMarkdown(file: string): void {
    writeFileSync(file, this.markdown());
  }
}
