/**
 * Config problems as users see them: each issue names the file, the 1-based line and column
 * of the YAML node at fault, the config path (`devices[0].tags[3].address`) and a message.
 * A ConfigError carries every issue of one file, sorted by position; its message is the
 * complete printable report, so whoever prints it prints everything exactly once.
 * Messages never hold resolved secret values (load.ts redacts them before building issues).
 */
import { GatewayError } from "../lib/errors.ts";

export type PathSegment = string | number;

export interface ConfigIssue {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  col: number;
  /** Like `devices[0].tags[3].address`; empty for the document as a whole. */
  path: string;
  message: string;
}

/** `["devices", 0, "tags", 3, "address"]` -> `devices[0].tags[3].address`. */
export function formatPath(path: readonly PathSegment[]): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else text += text === "" ? segment : `.${segment}`;
  }
  return text;
}

/** `file:line:col: path: message` (the path left out when empty). */
export function formatIssue(issue: ConfigIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.col}`;
  return issue.path === ""
    ? `${where}: ${issue.message}`
    : `${where}: ${issue.path}: ${issue.message}`;
}

export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
}

export class ConfigError extends GatewayError {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[]) {
    const sorted = sortIssues(issues);
    const count = sorted.length === 1 ? "1 problem" : `${sorted.length} problems`;
    super("CONFIG_INVALID", `${file}: ${count}\n${sorted.map(formatIssue).join("\n")}`, {
      details: { file, issues: sorted },
    });
    this.name = "ConfigError";
    this.file = file;
    this.issues = sorted;
  }
}
