/**
 * `plc2mqtt events verify -c gateway.yaml [--from SEQ] [--anchor SEQ:HASH]`: walks the
 * journal's hash chain (journal/verify.ts) read-only, while the gateway runs or when it is
 * stopped.
 *
 * Output: a line per chain segment the walk enters (new, migrated, salvaged: where the old
 * chain ended) and where pruning left off, then one summary line (records checked, segments,
 * first and last sequence, head hash); exit 0. On the first break, one line naming its
 * sequence and what it looks like (modified, deleted, reordered, inserted, or an anchor that
 * does not match); exit 1. Progress goes to stderr every 100,000 records.
 *
 * --from SEQ starts at that sequence (the record before it supplies the link). --anchor SEQ:HASH
 * (a chain head seen in a retained status or health message) checks that record SEQ still
 * holds HASH and that the chain from it to the head is intact. When SEQ was pruned since, it
 * can no longer be checked: that is said and the exit code is 1, unless --pruned-anchor-ok is
 * given (then the chain that is kept is verified and decides the exit code).
 *
 * `-c` (and `--from`) may be given before or after `verify`: the `events` command reads them
 * too, so they are taken from wherever commander put them.
 */
import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import { parseSequence } from "../../events/cloudevent.ts";
import { type VerifyResult, verifyJournal } from "../../journal/index.ts";
import { GatewayError } from "../../lib/errors.ts";

interface VerifyOptions {
  config?: string;
  from?: string;
  anchor?: string;
  prunedAnchorOk?: boolean;
}

/** Adds `verify` to the `events` command of `program` (registered before). */
export function registerEventsVerify(program: Command): void {
  const events = program.commands.find((c) => c.name() === "events");
  if (!events) throw new Error("registerEventsVerify: the events command is not registered");
  events
    .command("verify")
    .description(
      "walk the journal's hash chain and report the first break (exit 0 intact, 1 broken)",
    )
    .option("-c, --config <file>", "gateway config (YAML): the journal is in gateway.data_dir")
    .option("--from <seq>", "start at this sequence (the record before it supplies the link)")
    .option(
      "--anchor <seq:hash>",
      "a chain head seen elsewhere (retained status, health message): record SEQ must hold HASH",
    )
    .option("--pruned-anchor-ok", "an anchor whose record was pruned is not a failure")
    .action(async function (this: Command) {
      const options = this.optsWithGlobals() as VerifyOptions;
      if (options.config === undefined) {
        throw new GatewayError("USAGE", "events verify needs -c, --config <file>");
      }
      const from = options.from === undefined ? undefined : sequenceOption(options.from, "--from");
      const anchor = options.anchor === undefined ? undefined : anchorOption(options.anchor);
      const { config } = await loadConfig(options.config, process.env);
      const result = verifyJournal(config.gateway.data_dir, {
        ...(from === undefined ? {} : { from }),
        ...(anchor === undefined ? {} : { anchor }),
        onProgress: (p) =>
          process.stderr.write(`verified ${p.checked} records (at sequence ${p.sequence})\n`),
      });
      process.stdout.write(report(result, options.prunedAnchorOk === true));
      const anchorFails = result.anchorPruned === true && options.prunedAnchorOk !== true;
      process.exitCode = result.ok && !anchorFails ? 0 : 1;
    });
}

function sequenceOption(text: string, option: string): bigint {
  try {
    return parseSequence(text.trim());
  } catch (err) {
    throw new GatewayError("USAGE", `${option} ${JSON.stringify(text)}: ${String(err)}`);
  }
}

function anchorOption(text: string): { sequence: bigint; hash: string } {
  const m = /^\s*(\d{1,20}):([0-9a-fA-F]{64})\s*$/.exec(text);
  if (!m) {
    throw new GatewayError(
      "USAGE",
      `--anchor ${JSON.stringify(text)} is not SEQ:HASH (a sequence, a colon, 64 hex digits)`,
    );
  }
  return { sequence: sequenceOption(m[1]!, "--anchor"), hash: m[2]!.toLowerCase() };
}

/** The lines printed: segments, pruning, then the summary or the break. */
export function report(result: VerifyResult, prunedAnchorOk: boolean): string {
  const lines: string[] = [];
  if (result.beforeChain > 0) {
    lines.push(`${result.beforeChain} records before the chain (written before the migration)`);
  }
  if (result.prunedThrough) {
    lines.push(
      `pruning left off at sequence ${result.prunedThrough.sequence} (hash ${result.prunedThrough.hash}): the oldest kept record links to it`,
    );
  }
  for (const s of result.segments) {
    if (s.kind === "salvaged") {
      const ended =
        s.prevSequence !== undefined && s.prevHash !== undefined
          ? `at sequence ${s.prevSequence} (hash ${s.prevHash})`
          : "at an unknown point (no hash could be read)";
      lines.push(
        `chain segment salvaged starts at sequence ${s.start}: the damaged file ${s.note ?? "?"} had its chain end ${ended}`,
      );
    } else if (s.kind === "migrated") {
      const before =
        s.prevSequence === undefined ? "" : ` (records up to ${s.prevSequence} have no hash)`;
      lines.push(`chain segment migrated starts at sequence ${s.start}${before}`);
    } else {
      lines.push(`chain segment new starts at sequence ${s.start}`);
    }
  }
  if (result.anchorPruned) {
    lines.push(
      prunedAnchorOk
        ? "the anchor's record was pruned: it cannot be checked any more (--pruned-anchor-ok)"
        : "the anchor's record was pruned: it cannot be checked any more (give --pruned-anchor-ok to accept that)",
    );
  }
  if (result.broken) {
    lines.push(`chain broken at sequence ${result.broken.sequence}: ${result.broken.message}`);
  } else if (result.checked === 0) {
    lines.push("chain intact: no records to check");
  } else {
    const anchor = result.anchorOk ? ", anchor matches" : "";
    lines.push(
      `chain intact: ${result.checked} records checked, ${result.segments.length} segment(s), sequences ${result.first} to ${result.last}, head hash ${result.headHash}${anchor}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
