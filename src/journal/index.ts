/** The journal's public face: open it, and the contract types. Everything else is internal. */
export { openJournal } from "./journal.ts";
export type {
  Journal,
  JournalOptions,
  JournalQuery,
  JournalRecord,
  JournalStats,
  Render,
  RenderedEvent,
} from "./types.ts";
