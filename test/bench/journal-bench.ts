/** The journal benchmark as bench results: group commit against one transaction per event. */
import { benchJournal } from "../journal/journal-bench.ts";
import type { BenchResult } from "./result.ts";

export async function journalThroughput(): Promise<BenchResult[]> {
  const r = await benchJournal({
    events: 20_000,
    perEventEvents: 1000,
    dir: process.env.TMPDIR ?? "/tmp",
  });
  return [
    {
      bench: "journal.append",
      metric: "events_per_s_group_commit",
      value: r.groupCommit.eventsPerSecond,
      unit: "events/s",
    },
    {
      bench: "journal.append",
      metric: "events_per_s_one_tx_per_event",
      value: r.perEvent.eventsPerSecond,
      unit: "events/s",
    },
    {
      bench: "journal.group_commit",
      metric: "speedup",
      value: r.groupCommit.eventsPerSecond / r.perEvent.eventsPerSecond,
      unit: "x",
      target: "group commit at least 5x one transaction per event (synchronous=FULL)",
      pass: r.groupCommit.eventsPerSecond >= 5 * r.perEvent.eventsPerSecond,
    },
  ];
}
