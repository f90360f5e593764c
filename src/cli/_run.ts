/**
 * Runs the CLI: --help and --version everywhere, and errors as one line on stderr — exit 2 for
 * usage errors, 1 for anything else, never a stack trace for an expected failure
 * (set EXOCLAW_DEBUG=1 to see one for an unexpected failure).
 */
import { type CommandDef, renderUsage, runCommand } from "citty";
import { isExoError } from "../lib/errors.ts";
import { VERSION } from "../lib/version.ts";

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  debug: boolean;
}

const defaultIO: CliIO = {
  out: (t) => process.stdout.write(t + "\n"),
  err: (t) => process.stderr.write(t + "\n"),
  debug: process.env.EXOCLAW_DEBUG === "1",
};

type AnyCommand = CommandDef<any>;

async function resolveCommand(root: AnyCommand, argv: string[]): Promise<[AnyCommand, AnyCommand | undefined]> {
  let cmd = root;
  let parent: AnyCommand | undefined;
  for (const arg of argv) {
    if (arg.startsWith("-")) continue;
    const subs = typeof cmd.subCommands === "function" ? await cmd.subCommands() : await cmd.subCommands;
    const entry = subs?.[arg];
    if (!entry) break;
    parent = cmd;
    cmd = (typeof entry === "function" ? await entry() : await entry) as AnyCommand;
  }
  return [cmd, parent];
}

/** Returns the process exit code. */
export async function runCli(root: AnyCommand, argv: string[], io: CliIO = defaultIO): Promise<number> {
  try {
    if (argv.includes("--help") || argv.includes("-h")) {
      const [cmd, parent] = await resolveCommand(root, argv);
      io.out(await renderUsage(cmd, parent));
      return 0;
    }
    if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
      io.out(VERSION);
      return 0;
    }
    if (argv.length === 0) {
      io.out(await renderUsage(root));
      return 0;
    }
    const { result } = await runCommand(root, { rawArgs: argv });
    return typeof result === "number" ? result : 0;
  } catch (e) {
    if (e instanceof Error && e.name === "CLIError") {
      io.err(`exoclaw: ${e.message.replace(/\x1b\[[0-9;]*m/g, "")} (see exoclaw --help)`);
      return 2;
    }
    if (isExoError(e)) {
      io.err(`exoclaw: ${e.message}`);
      return e.code === "usage" ? 2 : 1;
    }
    io.err(`exoclaw: unexpected error: ${e instanceof Error ? e.message : String(e)}`);
    if (io.debug && e instanceof Error && e.stack) io.err(e.stack);
    return 1;
  }
}
