#!/usr/bin/env node
import { runCli } from "./cli/program.ts";

await runCli(process.argv);
