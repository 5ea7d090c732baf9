/**
 * `plc2mqtt replay`: re-publishes a time range of the journal to the config's broker, on the
 * original topics, each document with `replay: true` and its original id and sequence, QoS 1,
 * never retained, in sequence order (see app/replay.ts and publish/replay.ts).
 *
 * Only events the broker already acknowledged are replayed: pending ones are still on their way
 * (the daemon publishes them). Consumers de-duplicate on id, so one that wants replays must
 * accept `replay: true` documents whose id it has seen.
 *
 * --set-aside replays the events set aside instead (the broker refused them for good; --from
 * is then optional): once the cause is fixed, each one the broker acknowledges is no longer set
 * aside; one refused again stays set aside, and the replay goes on with the next. Exit 1 when
 * any stayed set aside.
 *
 * Output: progress and the final count on stderr; with --dry-run, what would be sent on stdout
 * (`<topic> <document>`, one a line) and nothing is sent. Exit 0 when every matching event was
 * acknowledged, 1 when the replay stopped (the message says how far it got).
 */
import type { Command } from "commander";
import {
  dryRunReplay,
  type ReplayFilter,
  replayClientId,
  replayJournal,
} from "../../app/replay.ts";
import { loadConfig } from "../../config/load.ts";
import { GatewayError } from "../../lib/errors.ts";
import { createLogger, LOG_LEVELS, secretValuesIn } from "../../lib/logger.ts";
import { addFilterOptions, type FilterOptions, filterQuery } from "./events.ts";

interface ReplayOptions extends FilterOptions {
  dryRun?: boolean;
  setAside?: boolean;
  progressEvery: string;
  ackTimeout: string;
  logLevel: string;
}

export function registerReplay(program: Command): void {
  const command = program
    .command("replay")
    .description(
      "re-publish journaled events of a time range to the broker (replay: true, original id and sequence, never retained); only events already published, or with --set-aside the events set aside",
    );
  addFilterOptions(command)
    .option(
      "--set-aside",
      "replay the events set aside (the broker refused them for good) instead; each one the broker now acknowledges is no longer set aside; --from is then optional",
    )
    .option("--dry-run", "print what would be sent (`<topic> <document>` a line); send nothing")
    .option("--progress-every <n>", "print progress on stderr every n events", "1000")
    .option("--ack-timeout <ms>", "longest wait for one PUBACK before the replay stops", "10000")
    .option("--log-level <level>", `log level on stderr (${LOG_LEVELS.join(", ")})`, "warn")
    .action(async (options: ReplayOptions) => {
      if (options.from === undefined && !options.setAside)
        throw new GatewayError(
          "USAGE",
          "--from <time> is required (a replay needs the start of its time range), except with --set-aside",
        );
      const every = wholeNumber(options.progressEvery, "--progress-every");
      const ackTimeoutMs = wholeNumber(options.ackTimeout, "--ack-timeout");
      const { config } = await loadConfig(options.config, process.env);
      const query = filterQuery(options);
      const filter: ReplayFilter = {
        from: query.from ?? 0,
        ...(query.to === undefined ? {} : { to: query.to }),
        ...(query.device === undefined ? {} : { device: query.device }),
        ...(query.subject === undefined ? {} : { subject: query.subject }),
        ...(query.type === undefined ? {} : { type: query.type }),
        ...(query.where === undefined ? {} : { where: query.where }),
        ...(options.setAside ? { setAside: true } : {}),
      };
      if (options.dryRun) {
        await dryRun(config, filter);
        return;
      }
      const controller = new AbortController();
      const onSignal = () => controller.abort(new Error("interrupted"));
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        const report = await replayJournal({
          config,
          filter,
          log: createLogger({ level: options.logLevel, secrets: secretValuesIn(config) }),
          signal: controller.signal,
          ackTimeoutMs,
          onProgress: (published, total) => {
            if (published % every === 0 && published < total)
              process.stderr.write(`replayed ${published}/${total}\n`);
          },
        });
        const skipped =
          report.skipped > 0 ? `; skipped ${report.skipped} unreadable record(s)` : "";
        process.stderr.write(
          report.matched === 0
            ? `no ${filter.setAside ? "set-aside" : "published"} events match: nothing replayed\n`
            : `replayed ${report.published} of ${report.matched} ${filter.setAside ? "set-aside " : ""}event(s) to ${report.broker} as ${report.clientId} (replay: true, not retained)${skipped}\n`,
        );
        if (filter.setAside) setAsideOutcome(report);
      } finally {
        process.removeListener("SIGINT", onSignal);
        process.removeListener("SIGTERM", onSignal);
      }
    });
}

/** What a --set-aside replay left set aside; exit 1 when anything is. */
function setAsideOutcome(report: Awaited<ReturnType<typeof replayJournal>>): void {
  if (report.cleared > 0)
    process.stderr.write(`${report.cleared} event(s) no longer set aside (published)\n`);
  if (report.clearError !== undefined)
    process.stderr.write(
      `the acknowledged events are still listed as set aside: ${report.clearError}\n`,
    );
  if (report.refused > 0) {
    process.stderr.write(
      `${report.refused} event(s) refused again and kept set aside:\n${report.refusals.map((r) => `  ${r}\n`).join("")}`,
    );
  }
  if (report.refused > 0 || report.clearError !== undefined) process.exitCode = 1;
}

async function dryRun(
  config: Parameters<typeof dryRunReplay>[0],
  filter: ReplayFilter,
): Promise<void> {
  const lines = dryRunReplay(config, filter);
  let count = 0;
  for (;;) {
    const next = lines.next();
    if (next.done) {
      const skipped =
        next.value.skipped > 0 ? `; ${next.value.skipped} unreadable record(s) skipped` : "";
      const broker = config.mqtt?.url ?? "(no mqtt section in the config)";
      process.stderr.write(
        `dry run: ${count} event(s) would be re-published to ${broker} as ${replayClientId(config)} (replay: true, not retained)${skipped}\n`,
      );
      return;
    }
    count += 1;
    const line = `${next.value.record.topic} ${next.value.payload}\n`;
    if (!process.stdout.write(line)) {
      await new Promise((resolve) => process.stdout.once("drain", resolve));
    }
  }
}

function wholeNumber(text: string, name: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new GatewayError("USAGE", `${name} must be a whole number above 0`);
  return n;
}
