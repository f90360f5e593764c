/**
 * Shared knobs of the property tests under tests/fuzz (issue 15).
 *
 *   FC_SEED=<n>     replay a run (the run prints the seed it used, once; a failure prints seed and path)
 *   FUZZ_RUNS=<n>   cases per property instead of the bounded default of `npm test` (e.g. 10000)
 *   FUZZ_DEBUG=1    print each heap check's snapshots; FUZZ_HEAP_AGAIN=1 runs its second round always
 */
import { heapStats } from "bun:jsc";
import fc from "fast-check";

const seedEnv = process.env.FC_SEED;
/** The seed of this run: FC_SEED, else a fresh one, printed so a failure can be replayed. */
export const SEED = seedEnv !== undefined && seedEnv !== "" ? Number(seedEnv) : Math.floor(Math.random() * 2 ** 31);
const runsEnv = Number(process.env.FUZZ_RUNS ?? "");
/** True for the long opt-in run. */
export const LONG = Number.isInteger(runsEnv) && runsEnv > 0;

let printed = false;
/** fast-check parameters for one property: the run's seed, `base` cases (FUZZ_RUNS in a long run). */
export function params<T>(base: number): fc.Parameters<T> {
  if (!printed) {
    printed = true;
    // One seed per process: bun test shares this module across files, so it prints once per run.
    console.log(`fuzz: FC_SEED=${SEED}${LONG ? ` FUZZ_RUNS=${runsEnv}` : ""}`);
  }
  return { seed: SEED, numRuns: LONG ? runsEnv : base, endOnFailure: false };
}

/** Per-test timeout: bun's default for the bounded run, unbounded-ish for the long one. */
export const TIMEOUT = LONG ? 24 * 3600_000 : 30_000;

/** Polls `check` until it holds or `ms` passes; returns whether it held (no sleeps in place of signals). */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await Bun.sleep(10);
  }
}

/** The JS heap after a full collection: its size and its count of live objects. */
export interface HeapSnapshot {
  bytes: number;
  objects: number;
}
export function heapSnapshot(): HeapSnapshot {
  Bun.gc(true);
  const h = heapStats();
  return { bytes: h.heapSize, objects: h.objectCount };
}

/**
 * "Memory back near its baseline": `after` (taken after the fuzz) against `before` (taken after a
 * warm-up). What a case left reachable shows as live objects, the steady measure: a run moves them
 * by about 2,500 (modules and caches filling on first use), so 6,000 more fail it — 120 cases that
 * each keep 50 objects (a call's timers, closures and promises), or any case count in a long
 * FUZZ_RUNS run keeping a few each. The byte size moves with the collector's timing (20 MB seen), so
 * it gets a wide margin and catches only bulk retention (a body or stream kept per case).
 */
export function nearBaseline(before: HeapSnapshot, after: HeapSnapshot): string | null {
  if (process.env.FUZZ_DEBUG) console.log(`heap: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
  const objects = before.objects + 6000;
  const bytes = before.bytes * 1.5 + 32 * 1024 * 1024;
  if (after.objects > objects)
    return `live objects ${before.objects} -> ${after.objects} (limit ${Math.round(objects)})`;
  if (after.bytes > bytes) return `heap bytes ${before.bytes} -> ${after.bytes} (limit ${Math.round(bytes)})`;
  return null;
}

/**
 * "Memory back near its baseline" (nearBaseline) after the fuzz; when it is not, the fuzz runs once
 * more (`again`: the same property, seed and count) and only that second round's growth is judged.
 * A case that keeps memory keeps it in both rounds; what a first round adds once does not come back
 * (code compiled for paths the fixed-seed warm-up missed, or work that earlier test files in the
 * same `bun test` process leave finishing: 33,000 objects were seen once in a full run, never alone).
 */
export async function heapBack(before: HeapSnapshot, again: () => Promise<unknown>): Promise<string | null> {
  const after = heapSnapshot();
  const first = nearBaseline(before, after);
  if (first === null && !process.env.FUZZ_HEAP_AGAIN) return null;
  await again();
  const second = nearBaseline(after, heapSnapshot());
  return second === null ? null : `${first ?? "first round near its baseline"}; over the same cases again: ${second}`;
}

/** fast-check parameters for a warm-up before a heap baseline: a fixed seed and case count, long run or not. */
export function warmUp<T>(numRuns: number): fc.Parameters<T> {
  return { seed: 1, numRuns };
}
