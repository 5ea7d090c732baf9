/**
 * The journal's public face: the only module other folders import from journal/. The daemon
 * opens the journal (openJournal); other processes read it (openJournalReader: `events`,
 * `replay`) and clear what a replay got through (clearSetAside). The contract types.
 * Everything else is internal (test/architecture holds other folders to this file).
 */
export { openJournal } from "./journal.ts";
export {
  type JournalReader,
  openJournalReader,
  type ReaderQuery,
  type RecordRange,
} from "./reader.ts";
export { clearSetAside } from "./set-aside.ts";
export type {
  Journal,
  JournalChainHead,
  JournalOptions,
  JournalQuery,
  JournalRecord,
  JournalStats,
  Render,
  RenderedEvent,
} from "./types.ts";
export {
  type Segment,
  type VerifyOptions,
  type VerifyProgress,
  type VerifyResult,
  verifyJournal,
} from "./verify.ts";
export { parseWhere, type WhereTerm } from "./where.ts";
