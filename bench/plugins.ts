/**
 * Plugin host benchmarks, each against a baseline in the same run, interleaved:
 * - a warm tool call through the child process vs the same call in-process (Extism, no isolation),
 *   paired call by call;
 * - instantiation from a cached compiled module vs compiling and instantiating from the bytes;
 * - calls/s over 2 plugin processes vs in-process calls, in alternating windows;
 * - a runaway killed at its deadline: from the call's start + timeout_ms to the next answered call
 *   of the same plugin (kill, respawn, load, call), against a warm call of that plugin.
 *
 *   bun scripts/build-plugins.ts && bun bench/plugins.ts [--calls 5000] [--seconds 2] [--reps 5] [--smoke]
 */
import createPlugin from "@extism/extism";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../src/lib/log.ts";
import { PluginHost, pluginHostCommand } from "../src/sandbox/index.ts";
import {
  benchArgs,
  goal,
  int,
  interleave,
  ms,
  num,
  onCleanup,
  pairDiffs,
  pairRatios,
  printHeader,
  ratio,
  ROOT,
  runBench,
  spread,
  step,
  summarize,
  table,
  us,
} from "./_lib.ts";

const args = benchArgs("plugins", { calls: { type: "string" }, seconds: { type: "string" } }, 600);
const { smoke, reps } = args;
const CALLS = num(args.values.calls, 5000, smoke, 50);
const SECONDS = num(args.values.seconds, 2, smoke, 0.2);
const RUNAWAY_TIMEOUT_MS = 200;

const grant = (name: string, timeout_ms = 5000) => ({
  name,
  allowed_hosts: [],
  allowed_paths: {},
  secrets: [],
  memory_mb: 16,
  timeout_ms,
  config: {},
});
const input = { text: "hello" };
const shims = {
  env: { seed: () => Date.now(), "Date.now": () => Date.now(), "console.log": () => {}, abort: () => {} },
};
const userFns = {
  "extism:host/user": {
    exo_log() {},
    exo_now: () => Date.now(),
    exo_kv_get: () => 0n,
    exo_kv_set() {},
    exo_http: () => 0n,
    exo_fs_read: () => 0n,
    exo_fs_write: () => 0n,
  },
};

function newHost(maxProcesses: number) {
  const host = new PluginHost({
    command: pluginHostCommand(),
    kv: { get: async () => null, set: async () => {}, stats: async () => ({ entries: 0, bytes: 0 }) },
    secret: () => null,
    log: silentLogger,
    maxProcesses,
  });
  onCleanup(() => host.stop());
  return host;
}

await runBench("plugins", async () => {
  printHeader(
    "plugins",
    args,
    `${CALLS} paired warm calls, ${SECONDS} s throughput windows, runaway timeout_ms ${RUNAWAY_TIMEOUT_MS}`,
  );
  const wasmPath = join(ROOT, "dist/plugins/echo.wasm");
  const hostilePath = join(ROOT, "dist/fixtures/hostile.wasm");
  if (!existsSync(wasmPath) || !existsSync(hostilePath))
    throw new Error(
      "no dist/plugins/echo.wasm or dist/fixtures/hostile.wasm: run `bun scripts/build-plugins.ts` first",
    );
  const wasm = new Uint8Array(await Bun.file(wasmPath).arrayBuffer());
  const hostile = new Uint8Array(await Bun.file(hostilePath).arrayBuffer());
  const payload = JSON.stringify({ tool: "echo", input });
  const module = await WebAssembly.compile(wasm);
  const instantiate = () =>
    createPlugin({ wasm: [{ module }] } as never, { useWasi: false, functions: { ...userFns, ...shims } } as never);

  // Every call must answer the echo; an error or anything else fails the run.
  const viaChild = async (h: ReturnType<typeof newHost>) => {
    const r = await h.callTool("echo", "echo", input);
    if (r.is_error || !r.content.includes(input.text))
      throw new Error(`a call through the child answered ${JSON.stringify(r).slice(0, 200)}`);
  };
  const viaInProcess = async (p: Awaited<ReturnType<typeof instantiate>>) => {
    const out = (await p.call("call", payload))?.text() ?? "";
    if (!out.includes(input.text)) throw new Error(`an in-process call answered ${JSON.stringify(out.slice(0, 200))}`);
  };

  // 1. Warm call: through the child process vs in-process, paired call by call.
  const host = newHost(1);
  const inproc = await instantiate();
  const warm = await step("paired warm calls", 120_000, async () => {
    await host.load(grant("echo"), wasm);
    for (let i = 0; i < (smoke ? 10 : 500); i++) await viaChild(host), await viaInProcess(inproc);
    return interleave(CALLS, {
      child: async () => {
        const t0 = performance.now();
        await viaChild(host);
        return performance.now() - t0;
      },
      inProcess: async () => {
        const t0 = performance.now();
        await viaInProcess(inproc);
        return performance.now() - t0;
      },
    });
  });
  await host.stop();
  const boundary = summarize(pairDiffs(warm.child, warm.inProcess));

  // 2. Instantiation from the cached compiled module vs from the bytes.
  const inst = await step("instantiation", 60_000, () =>
    interleave(smoke ? 3 : 200, {
      cached: async () => {
        const t0 = performance.now();
        const p = await instantiate();
        const t = performance.now() - t0;
        await p.close();
        return t;
      },
      fromBytes: async () => {
        const t0 = performance.now();
        const p = await createPlugin(
          { wasm: [{ data: wasm }] } as never,
          { useWasi: false, functions: { ...userFns, ...shims } } as never,
        );
        const t = performance.now() - t0;
        await p.close();
        return t;
      },
    }),
  );

  // 3. Throughput: 8 callers over 2 plugin processes vs 8 callers on one in-process instance.
  const pool = newHost(2);
  await pool.load(grant("echo"), wasm);
  await Promise.all([viaChild(pool), viaChild(pool)]);
  const windowOf = (call: () => Promise<unknown>) => async () => {
    let calls = 0;
    const end = performance.now() + SECONDS * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < end) {
          await call();
          calls++;
        }
      }),
    );
    return calls / ((performance.now() - t0) / 1000);
  };
  const rates = await step("throughput windows", 60_000 + reps * SECONDS * 2 * 3000, () =>
    interleave(reps, {
      pool: windowOf(() => viaChild(pool)),
      inProcess: windowOf(() => viaInProcess(inproc)),
    }),
  );
  await pool.stop();
  await inproc.close();

  // 4. A runaway: the clock starts at the call's start + timeout_ms (the deadline), and stops when the
  //    same plugin answers its next call (the child killed, a new one spawned and loaded).
  const one = newHost(1);
  await one.load(grant("hostile", RUNAWAY_TIMEOUT_MS), hostile);
  await one.callTool("hostile", "count", {});
  const runaway = { afterDeadline: [] as number[], rejectionLag: [] as number[], warm: [] as number[] };
  await step("runaway kills", 60_000 + reps * 10_000, async () => {
    for (let i = 0; i < Math.max(reps, smoke ? 1 : 5); i++) {
      const t0 = performance.now();
      const deadline = t0 + RUNAWAY_TIMEOUT_MS;
      const outcome = await one.callTool("hostile", "spin", {}).then(
        () => "answered",
        (e: unknown) => (e instanceof Error ? e.message : String(e)),
      );
      if (outcome === "answered") throw new Error("the runaway call was answered instead of killed");
      runaway.rejectionLag.push(performance.now() - deadline);
      await one.callTool("hostile", "count", {});
      runaway.afterDeadline.push(performance.now() - deadline);
      const w0 = performance.now();
      await one.callTool("hostile", "count", {});
      runaway.warm.push(performance.now() - w0);
    }
  });
  await one.stop();

  const child = summarize(warm.child);
  const inp = summarize(warm.inProcess);
  const cached = summarize(inst.cached);
  const kill = summarize(runaway.afterDeadline);
  table(
    ["measure", "exoclaw", "baseline in the same run", "goal"],
    [
      [
        "warm tool call through the child process (echo), p50 / p99",
        `${us(child.median)} / ${us(child.p99)}`,
        `in-process Extism, no isolation: ${us(inp.median)} / ${us(inp.p99)}`,
        `p50 ${goal(child.median, "≤", 0.25, us)}`,
      ],
      [
        `process boundary: per-pair difference (child − in-process) over ${CALLS} pairs, median / p90`,
        `${us(boundary.median)} / ${us(boundary.p90)}`,
        "",
        "",
      ],
      [
        "instantiation from a cached compiled module, median (p25–p75)",
        spread(cached, us),
        `compile + instantiate from bytes: ${spread(summarize(inst.fromBytes), us)}`,
        goal(cached.median, "≤", 5, ms),
      ],
      [
        `calls/s, 2 plugin processes, 8 callers, median (min–max) of ${reps}`,
        spread(summarize(rates.pool), int),
        `in-process, 8 callers: ${spread(summarize(rates.inProcess), int)}; per-pair ratio ${spread(summarize(pairRatios(rates.pool, rates.inProcess)), ratio)}`,
        "",
      ],
      [
        `runaway (timeout_ms ${RUNAWAY_TIMEOUT_MS}): deadline → next call of the same plugin answered, median (min–max) of ${kill.n}`,
        spread(kill, ms),
        `warm call of that plugin: ${spread(summarize(runaway.warm), ms)}`,
        goal(kill.median, "≤", 200, ms),
      ],
      [
        "of which: deadline → the runaway call rejected, median (min–max)",
        spread(summarize(runaway.rejectionLag), ms),
        "",
        "",
      ],
      ["through-child / in-process, p50 ratio", ratio(child.median / inp.median), "", ""],
    ],
  );
});
