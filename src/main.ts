#!/usr/bin/env bun
import { root } from "./cli/index.ts";
import { runCli } from "./cli/_run.ts";

process.exitCode = await runCli(root, process.argv.slice(2));
