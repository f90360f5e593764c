/**
 * Runs the CLI: --help and --version everywhere, and errors as one line on stderr — exit 2 for
 * usage errors, 1 for anything else, never a stack trace for an expected failure
 * (set EXOCLAW_DEBUG=1 to see one for an unexpected failure).
 */
import { type CommandDef, renderUsage, runCommand } from "citty";
import { describeError, ExoError, isExoError } from "../lib/errors.ts";
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

/** The deepest command `argv` names, its parent, the arguments left for it, and the names on the way. */
async function resolveCommand(
  root: AnyCommand,
  argv: string[],
): Promise<[AnyCommand, AnyCommand | undefined, string[], string[]]> {
  let cmd = root;
  let parent: AnyCommand | undefined;
  let rest = argv;
  const names = ["exoclaw"];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith("-")) continue;
    const subs = typeof cmd.subCommands === "function" ? await cmd.subCommands() : await cmd.subCommands;
    const entry = subs?.[arg];
    if (!entry) break;
    parent = cmd;
    cmd = (typeof entry === "function" ? await entry() : await entry) as AnyCommand;
    rest = [...argv.slice(0, i).filter((a) => a.startsWith("-")), ...argv.slice(i + 1)];
    names.push(arg);
  }
  return [cmd, parent, rest, names];
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Refuses options the command does not define: citty would ignore them, and `gateway --tokn s3cret`
 * would start a gateway with no token. Throws ExoError("usage").
 */
async function checkOptions(cmd: AnyCommand, args: string[], path: string): Promise<void> {
  const defs = (typeof cmd.args === "function" ? await cmd.args() : await cmd.args) ?? {};
  const known = new Set<string>(["help", "h", "version", "v"]);
  for (const [name, def] of Object.entries(defs as Record<string, { type?: string; alias?: string | string[] }>)) {
    if (def.type === "positional") continue;
    known.add(name).add(kebab(name));
    if (def.type === "boolean") known.add(`no-${name}`).add(`no-${kebab(name)}`);
    for (const a of [def.alias ?? []].flat()) known.add(a);
  }
  for (const arg of args) {
    if (arg === "--") break;
    if (!arg.startsWith("-") || arg === "-") continue;
    const name = arg.replace(/^--?/, "").split("=")[0]!;
    if (!known.has(name)) throw new ExoError("usage", `unknown option ${arg.split("=")[0]} for \`${path}\``);
  }
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
    // The leaf runs directly: citty drops a subcommand's return value, and with it the exit code.
    const [cmd, , rest, names] = await resolveCommand(root, argv);
    const path = names.join(" ");
    const subs = typeof cmd.subCommands === "function" ? await cmd.subCommands() : await cmd.subCommands;
    if (!subs || cmd.run) await checkOptions(cmd, rest, path);
    const { result } = await runCommand(cmd, { rawArgs: rest });
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
    io.err(`exoclaw: unexpected error: ${describeError(e)}`);
    if (io.debug && e instanceof Error && e.stack) io.err(e.stack);
    return 1;
  }
}
