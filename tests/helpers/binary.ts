/**
 * The compiled binary, as a user runs it: built once per test run (and skipped while it is fresh for
 * the sources), then started from an unrelated directory with a bare environment — HOME, PATH and
 * EXOCLAW_HOME only, nothing from the source tree or the developer's shell.
 *
 * Freshness: `.cache/native-binary.json` records a hash of everything the binary is made from
 * (src/, plugins/, build.ts, scripts/build-plugins.ts, package.json, package-lock.json, the Bun
 * version) and the size and mtime of the binary it built. Each test file asks again (bun test may
 * evaluate this module once per file); only the first ask after a change builds.
 */
import type { Subprocess } from "bun";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { build, nativeTarget } from "../../build.ts";

const ROOT = join(import.meta.dir, "../..");
const STAMP = join(ROOT, ".cache/native-binary.json");
const INPUTS = ["src", "plugins", "build.ts", "scripts/build-plugins.ts", "package.json", "package-lock.json"];

/** This machine's release target, or undefined on a host that is none of the five. */
export const NATIVE = nativeTarget();

function files(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .filter((e) => e.name !== "node_modules")
    .flatMap((e) => files(join(path, e.name)))
    .sort();
}

/** A hash of every input of the build: names and bytes of the sources, and the Bun that compiles them. */
export function sourceHash(): string {
  const h = createHash("sha256").update(`bun ${Bun.version}\n`);
  for (const f of INPUTS.flatMap((p) => files(join(ROOT, p))))
    h.update(`${relative(ROOT, f)}\n`)
      .update(readFileSync(f))
      .update("\n");
  return h.digest("hex");
}

interface Stamp {
  sources: string;
  size: number;
  mtimeMs: number;
}

function binaryStat(path: string): { size: number; mtimeMs: number } | null {
  try {
    const s = statSync(path);
    return { size: s.size, mtimeMs: s.mtimeMs };
  } catch {
    return null;
  }
}

function readStamp(): Stamp | null {
  try {
    return JSON.parse(readFileSync(STAMP, "utf8")) as Stamp;
  } catch {
    return null;
  }
}

let building: Promise<string> | undefined;

/** The path of dist/<native binary>, built first unless it is fresh. Throws when this host has no target. */
export function nativeBinary(): Promise<string> {
  building ??= (async () => {
    if (!NATIVE) throw new Error(`no build target for this machine (${process.platform}-${process.arch})`);
    const bin = join(ROOT, "dist", NATIVE.out);
    const sources = sourceHash();
    const stamp = readStamp();
    const stat = binaryStat(bin);
    if (stamp && stat && stamp.sources === sources && stamp.size === stat.size && stamp.mtimeMs === stat.mtimeMs)
      return bin;
    await build([NATIVE]);
    const built = binaryStat(bin);
    if (!built) throw new Error(`the build wrote no ${bin}`);
    mkdirSync(join(ROOT, ".cache"), { recursive: true });
    writeFileSync(STAMP, JSON.stringify({ sources, ...built } satisfies Stamp) + "\n");
    return bin;
  })();
  return building;
}

/** A fresh directory for the binary's state and another as its working directory; both removed on dispose. */
export interface BinaryHome extends Disposable {
  /** EXOCLAW_HOME (and HOME). */
  path: string;
  /** The working directory: outside the source tree, with a .env and a bunfig.toml the binary must ignore. */
  cwd: string;
  /** Writes `text` to `name` under the state directory; returns the file's path. */
  file(name: string, text: string): string;
  /** The bare environment: HOME, PATH, EXOCLAW_HOME, plus `extra`. */
  env(extra?: Record<string, string>): Record<string, string>;
}

/** A token the cwd's .env sets: a binary that read that file would demand it. */
export const DOTENV_TOKEN = "from-a-dotenv-in-the-cwd";

export function binaryHome(): BinaryHome {
  const path = mkdtempSync(join(tmpdir(), "exoclaw-bin-home-"));
  const cwd = mkdtempSync(join(tmpdir(), "exoclaw-bin-cwd-"));
  // What a user's project directory may hold; the binary is built not to autoload either.
  writeFileSync(join(cwd, ".env"), `EXOCLAW_TOKEN=${DOTENV_TOKEN}\n`);
  writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./missing-preload.ts"]\n');
  return {
    path,
    cwd,
    file(name, text) {
      const p = join(path, name);
      mkdirSync(join(p, ".."), { recursive: true });
      writeFileSync(p, text);
      return p;
    },
    env: (extra = {}) => ({ HOME: path, PATH: process.env.PATH ?? "/usr/bin:/bin", EXOCLAW_HOME: path, ...extra }),
    [Symbol.dispose]() {
      rmSync(path, { recursive: true, force: true });
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}

export interface BinaryResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `exoclaw <args>` (the binary) to completion in `home`'s cwd and bare env. */
export async function runBinary(
  home: BinaryHome,
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string } = {},
): Promise<BinaryResult> {
  const bin = await nativeBinary();
  const proc = Bun.spawn([bin, ...args], {
    cwd: home.cwd,
    env: home.env(opts.env),
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** One JSON log line of the gateway. */
export type LogLine = Record<string, unknown> & { msg?: string };

export interface BinaryGateway extends AsyncDisposable {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Every JSON log line so far, parsed. */
  logs: LogLine[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the first log line (seen or to come) that matches; rejects when the process exits or `ms` pass. */
  waitForLog(match: (l: LogLine) => boolean, ms?: number): Promise<LogLine>;
  /** Sends `signal` to the gateway process (SIGTERM: what systemd sends to stop it). */
  kill(signal: "SIGHUP" | "SIGTERM" | "SIGINT"): void;
  /**
   * Sends SIGTERM unless one was already sent with `kill` (a second one would cut the drain short),
   * and resolves with the exit code; SIGKILL after `ms`.
   */
  stop(ms?: number): Promise<number>;
}

/** A port nothing listens on right now (the OS's pick, released again). */
export async function freePort(): Promise<number> {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = s.port;
  await s.stop(true);
  return port!;
}

export interface BinaryGatewayOptions {
  args?: string[];
  env?: Record<string, string>;
  /** `--port` (0, the default, lets the OS pick; the port is then read from the listening line). */
  port?: number;
  /**
   * The log level hides the "gateway listening" line (EXOCLAW_LOG=warn): wait instead until GET
   * /health answers on `port`, which must then be given.
   */
  quiet?: boolean;
}

/**
 * Starts `exoclaw gateway --port 0 [args]` (the binary) and resolves once its "gateway listening"
 * line is out (or, `quiet`, once /health answers). Its stdout is read all along, so a test can wait
 * for later lines too.
 */
export async function startBinaryGateway(home: BinaryHome, opts: BinaryGatewayOptions = {}): Promise<BinaryGateway> {
  const bin = await nativeBinary();
  if (opts.quiet && !opts.port) throw new Error("a quiet gateway needs an explicit port: freePort()");
  const proc = Bun.spawn([bin, "gateway", "--port", String(opts.port ?? 0), ...(opts.args ?? [])], {
    cwd: home.cwd,
    env: home.env(opts.env),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  let err = "";
  let ended = false;
  const wake = () => {
    for (const w of waiters) w();
  };
  const readLines = (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stdout) {
      buf += decoder.decode(chunk, { stream: true });
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const line of lines) {
        try {
          const parsed: unknown = JSON.parse(line);
          if (parsed && typeof parsed === "object") logs.push(parsed as LogLine);
        } catch {
          logs.push({ msg: "(not JSON)", line });
        }
      }
      wake();
    }
  })().catch(() => {});
  const readErr = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) err += decoder.decode(chunk, { stream: true });
  })().catch(() => {});
  void Promise.all([proc.exited, readLines]).then(() => {
    ended = true;
    wake();
  });

  const waitForLog = (match: (l: LogLine) => boolean, ms = 15_000) =>
    new Promise<LogLine>((resolve, reject) => {
      let timer: Timer | undefined;
      const check = () => {
        const hit = logs.find(match);
        if (!hit && !ended) return;
        waiters.delete(check);
        clearTimeout(timer);
        if (hit) resolve(hit);
        else
          void readErr.then(() =>
            reject(new Error(`the gateway exited (${proc.exitCode}) before the log line; stderr: ${err.trim()}`)),
          );
      };
      timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching log line within ${ms} ms; stderr: ${err.trim()}`));
      }, ms);
      waiters.add(check);
      check();
    });

  let stopping = false;
  const kill = (signal: "SIGHUP" | "SIGTERM" | "SIGINT") => {
    if (signal !== "SIGHUP") stopping = true;
    proc.kill(signal);
  };
  const stop = async (ms = 15_000) => {
    if (!stopping && proc.exitCode === null && proc.signalCode === null) kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
    const code = await proc.exited;
    clearTimeout(timer);
    await Promise.all([readLines, readErr]);
    return code;
  };

  try {
    const port = opts.quiet ? opts.port! : Number((await waitForLog((l) => l.msg === "gateway listening")).port);
    if (opts.quiet) {
      await until(
        "the quiet gateway's /health",
        async () => {
          if (proc.exitCode !== null) throw new Error(`the gateway exited (${proc.exitCode}); stderr: ${err.trim()}`);
          const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null);
          return res?.ok ? true : undefined;
        },
        15_000,
      );
    }
    return {
      proc,
      port,
      url: `http://127.0.0.1:${port}`,
      logs,
      stderr: () => err,
      waitForLog,
      kill,
      stop,
      async [Symbol.asyncDispose]() {
        await stop();
      },
    };
  } catch (e) {
    proc.kill("SIGKILL");
    await proc.exited;
    throw e;
  }
}

/** Polls `probe` until it returns a value other than undefined; throws after `ms`. No fixed sleeps in the tests. */
export async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}
