import type { Command } from "commander";

export function registerRead(program: Command): void {
  program.command("read").description("(not yet built)");
}
