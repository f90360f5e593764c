/**
 * What every bench shares: its command line (`--reps N`, `--smoke`, `--limit S`), the header that
 * says which code and machine a figure came from, interleaved A/B repetitions with medians, spread
 * and per-pair differences, a hang guard, and small /proc readers for memory and CPU.
 *
 * Interleaving: side A and side B alternate, and each pair alternates which side goes first
 * (A,B then B,A …), so a machine getting busier or quieter during a run shifts both sides alike and
 * neither side always runs first. Overhead is the distribution of the per-pair differences a_i − b_i
 * (their median and p90), never one percentile minus another.
 */
import { readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";

export const ROOT = join(import.meta.dir, "..");

export interface BenchArgs<V> {
  /** Tiny sizes (a few iterations, sub-second windows, 1 rep): proves the bench runs, measures nothing. */
  smoke: boolean;
  /** Repetitions of each interleaved comparison (default 5; 1 with --smoke). */
  reps: number;
  values: V;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses the bench's own options plus the shared ones and starts the hang guard (`--limit S`,
 * default `limitS`; the whole bench fails past it, naming the step it was in). A bad option is a
 * usage error: message to stderr, exit 2.
 */
export function benchArgs<O extends Options>(name: string, options: O, limitS: number) {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        ...options,
        smoke: { type: "boolean", default: false },
        reps: { type: "string" },
        limit: { type: "string" },
      },
      strict: true,
    });
  } catch (e) {
    console.error(`bench ${name}: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  }
  const v = parsed.values as Record<string, unknown>;
  const smoke = v.smoke === true;
  const reps = v.reps === undefined ? (smoke ? 1 : 5) : Number(v.reps);
  if (!Number.isInteger(reps) || reps < 1) usage(name, `--reps must be a whole number ≥ 1, got ${String(v.reps)}`);
  const limit = v.limit === undefined ? limitS : Number(v.limit);
  if (!(limit > 0)) usage(name, `--limit must be a number of seconds > 0, got ${String(v.limit)}`);
  guardWhole(name, limit * 1000);
  return { smoke, reps, values: parsed.values } as BenchArgs<typeof parsed.values>;
}

function usage(name: string, msg: string): never {
  console.error(`bench ${name}: ${msg}`);
  process.exit(2);
}

/** A whole-number option: its value, or `smokeValue` under --smoke when none was given. */
export function num(v: unknown, fallback: number, smoke: boolean, smokeValue: number): number {
  if (v === undefined) return smoke ? smokeValue : fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`bench: expected a positive number, got ${String(v)}`);
    process.exit(2);
  }
  return n;
}

// ---- hang guard and cleanup ------------------------------------------------------------------

const cleanups: (() => unknown)[] = [];
let currentStep = "starting";
let failing = false;

/** Registers work that must run however the bench ends (stop a gateway, remove a temp dir). */
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

/** Runs the cleanups, newest first, each given at most 5 s. */
export async function cleanup(): Promise<void> {
  while (cleanups.length) {
    const fn = cleanups.pop()!;
    try {
      await Promise.race([Promise.resolve().then(fn), Bun.sleep(5000)]);
    } catch {
      // best effort: the next cleanup still runs
    }
  }
}

/** Fails the bench: message to stderr, cleanups, exit 1. */
export async function fail(msg: string): Promise<never> {
  if (!failing) {
    failing = true;
    console.error(msg);
    await cleanup();
  }
  process.exit(1);
}

function guardWhole(name: string, ms: number): void {
  const t = setTimeout(
    () => void fail(`bench ${name}: took longer than its ${ms / 1000} s limit, in step "${currentStep}"`),
    ms,
  );
  t.unref();
  process.on(
    "unhandledRejection",
    (e) => void fail(`bench ${name}: in step "${currentStep}": ${e instanceof Error ? e.message : String(e)}`),
  );
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.on(sig, () => void fail(`bench ${name}: stopped by ${sig} in step "${currentStep}"`));
}

/**
 * Runs one named step; past `limitMs` the bench fails with a message naming it (exit 1). A step
 * that throws fails the bench the same way, with the error's message.
 */
export async function step<T>(name: string, limitMs: number, fn: () => Promise<T> | T): Promise<T> {
  const outer = currentStep;
  currentStep = name;
  let timer: Timer | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(fn),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new StepTimeout(`step "${name}" took longer than ${(limitMs / 1000).toFixed(1)} s`)),
          limitMs,
        );
      }),
    ]);
  } catch (e) {
    return await fail(
      `bench: ${e instanceof StepTimeout ? e.message : `step "${name}" failed: ${e instanceof Error ? e.message : String(e)}`}`,
    );
  } finally {
    clearTimeout(timer);
    currentStep = outer;
  }
}

class StepTimeout extends Error {}

/** Runs the bench's main function; a throw fails the bench with its message, cleanups always run. */
export async function runBench(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    await fail(`bench ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
  await cleanup();
  process.exit(0);
}

// ---- header ------------------------------------------------------------------------------------

/** Commit, date and machine, printed before any figure. */
export function printHeader(name: string, args: { smoke: boolean; reps?: number }, params: string): void {
  const git = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT, stdout: "pipe", stderr: "ignore" });
  const commit = git.exitCode === 0 ? git.stdout.toString().trim() : "unknown";
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "ignore",
  })
    .stdout.toString()
    .trim()
    ? " (uncommitted changes)"
    : "";
  const cpu = cpus()[0]?.model.trim() ?? "unknown cpu";
  console.log(`# bench ${name}${args.smoke ? " --smoke (tiny sizes: proves it runs, measures nothing)" : ""}`);
  console.log(
    `commit ${commit}${dirty} · ${new Date().toISOString()} · ${cpus().length} cores (${cpu}) · load ${uptimeLoad()} · Bun ${Bun.version}`,
  );
  console.log(
    args.reps === undefined ? params : `${params}; ${args.reps} rep${args.reps === 1 ? "" : "s"}, sides interleaved`,
  );
  console.log("");
}

/** The 1/5/15-minute load averages, as `uptime` shows them. */
export function uptimeLoad(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}

// ---- statistics ----------------------------------------------------------------------------------

/** The p-quantile (0..1) of sorted samples, by linear interpolation between closest ranks. */
function quantile(s: readonly number[], p: number): number {
  if (s.length === 0) return NaN;
  const at = (s.length - 1) * p;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
}

/** The p-quantile (0..1) by linear interpolation between closest ranks. */
export function pct(xs: readonly number[], p: number): number {
  return quantile(Float64Array.from(xs).sort() as unknown as number[], p);
}

export interface Summary {
  n: number;
  median: number;
  p25: number;
  p75: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
}

/** Sorted once; safe for millions of samples (no spread into Math.min). */
export function summarize(xs: readonly number[]): Summary {
  const s = Float64Array.from(xs).sort() as unknown as number[];
  const q = (p: number) => quantile(s, p);
  return {
    n: s.length,
    median: q(0.5),
    p25: q(0.25),
    p75: q(0.75),
    p90: q(0.9),
    p99: q(0.99),
    min: s.length ? s[0]! : NaN,
    max: s.length ? s[s.length - 1]! : NaN,
  };
}

/** The per-pair differences a_i − b_i. Throws when the sides do not pair up. */
export function pairDiffs(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new Error(`cannot pair ${a.length} samples with ${b.length}`);
  return a.map((x, i) => x - b[i]!);
}

/** The per-pair ratios a_i / b_i. */
export function pairRatios(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new Error(`cannot pair ${a.length} samples with ${b.length}`);
  return a.map((x, i) => x / b[i]!);
}

/**
 * Runs each side `reps` times, interleaved: pair i runs the sides in order, rotated by i (A,B then
 * B,A …). Returns each side's samples in rep order, so sample i of every side comes from pair i.
 */
export async function interleave<K extends string, T>(
  reps: number,
  sides: Record<K, (rep: number) => Promise<T>>,
): Promise<Record<K, T[]>> {
  const names = Object.keys(sides) as K[];
  const out = Object.fromEntries(names.map((n) => [n, [] as T[]])) as Record<K, T[]>;
  for (let i = 0; i < reps; i++) {
    for (let j = 0; j < names.length; j++) {
      const name = names[(i + j) % names.length]!;
      out[name][i] = await sides[name](i);
      // A macrotask between samples, so the hang guard's timer can fire even in a synchronous bench.
      await new Promise((r) => setImmediate(r));
    }
  }
  return out;
}

// ---- formatting ------------------------------------------------------------------------------------

/** `median (min–max)` when there are a few samples, `median (p25–p75)` when there are many. */
export function spread(s: Summary, f: (n: number) => string): string {
  if (s.n === 1) return f(s.median);
  return s.n < 10 ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : `${f(s.median)} (p25–p75 ${f(s.p25)}–${f(s.p75)})`;
}

export const ms = (n: number) => `${n.toFixed(n < 10 ? 2 : 1)} ms`;
export const us = (n: number) => `${(n * 1000).toFixed(0)} µs`;
export const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
export const int = (n: number) => Math.round(n).toLocaleString("en");
export const ratio = (n: number) => `${n.toFixed(2)}×`;

/** Prints a Markdown table. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): void {
  console.log(`| ${head.join(" | ")} |`);
  console.log(`|${head.map(() => "---").join("|")}|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  console.log("");
}

// ---- processes -------------------------------------------------------------------------------------

/** Resident set size of a process in KiB (from /proc/<pid>/status), or NaN when it is gone. */
export function rssKiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/**
 * Proportional set size in KiB (shared pages divided among the processes sharing them, from
 * /proc/<pid>/smaps_rollup): what a process really adds when several map the same binary.
 */
export function pssKiB(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** Direct children of a process, from /proc/<pid>/task/<tid>/children. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
        if (text) out.push(...text.split(/\s+/).map(Number));
      } catch {
        // the thread ended while we looked
      }
    }
  } catch {
    // the process is gone
  }
  return [...new Set(out)];
}

/** User + system CPU time of a process in ms (clock ticks of 10 ms on Linux). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

/** Polls `url` until it answers 200; throws past `timeoutMs` or when `proc` exits first. */
export async function waitHealthy(url: string, proc: Bun.Subprocess, timeoutMs = 15_000): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`the process exited (${proc.exitCode ?? proc.signalCode}) before ${url} answered`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s`);
    await Bun.sleep(1);
  }
}

/** SIGTERM, then SIGKILL after 5 s. */
export async function stopProcess(proc: Bun.Subprocess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
  await proc.exited;
  clearTimeout(t);
}

/**
 * A goal's verdict for a measured value: `≥ 5,000 ✓` or `≥ 5,000 ✗ short by 1,215 (24%)`.
 * Never a stale tick: it is computed from the figure printed beside it.
 */
export function goal(value: number, op: "≤" | "≥", target: number, f: (n: number) => string): string {
  const met = op === "≤" ? value <= target : value >= target;
  if (met) return `${op} ${f(target)} ✓`;
  const by = Math.abs(value - target);
  return `${op} ${f(target)} ✗ ${op === "≤" ? "over" : "short"} by ${f(by)} (${((100 * by) / target).toFixed(0)}%)`;
}
