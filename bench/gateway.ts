/**
 * Gateway benchmarks, each against a baseline in the same run, interleaved:
 * - cold start to the first 200 from /health: the compiled binary vs a compiled bare Bun.serve
 *   binary (the floor, built here the same way) vs `bun src/main.ts`;
 * - idle RSS with the built-in plugins loaded (echo, notes, http-get, the http channel) vs the bare
 *   binary, and the RSS of each plugin-host child once each plugin has been called;
 * - RSS per idle WebSocket at 1k and 10k sockets, vs the bare binary;
 * - ping round trips/s over 1 and 100 sockets, vs the bare binary.
 *
 *   bun build.ts --native && bun bench/gateway.ts [--binary dist/exoclaw-linux-x64] [--runs 15]
 *     [--seconds 2] [--sockets 1000,10000] [--reps 5] [--smoke]
 *
 * The gateways run as their own processes; this process is the client (and the fake upstream the
 * plugin turns need). Everything stays on loopback and stops by itself.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FROM_SOURCE,
  gatewayConfig,
  type GatewayProcess,
  openClient,
  startGateway,
  startUpstream,
  webhookTurn,
} from "./_gateway.ts";
import {
  benchArgs,
  childrenOf,
  goal,
  pssKiB,
  int,
  interleave,
  mib,
  ms,
  num,
  onCleanup,
  pairDiffs,
  pairRatios,
  printHeader,
  ratio,
  ROOT,
  rssKiB,
  runBench,
  spread,
  step,
  summarize,
  table,
} from "./_lib.ts";

const args = benchArgs(
  "gateway",
  { binary: { type: "string" }, runs: { type: "string" }, seconds: { type: "string" }, sockets: { type: "string" } },
  1200,
);
const { smoke, reps } = args;
const BINARY = args.values.binary ?? join(ROOT, "dist/exoclaw-linux-x64");
const RUNS = num(args.values.runs, 15, smoke, 1);
const SECONDS = num(args.values.seconds, 2, smoke, 0.1);
const SOCKETS = (args.values.sockets ?? (smoke ? "50,100" : "1000,10000")).split(",").map(Number);
const IDLE_MS = smoke ? 100 : 1000;
// The bench process holds every client socket; the machine allows 20,000 open files per process.
if (SOCKETS.some((n) => !Number.isInteger(n) || n < 1 || n > 15_000)) {
  console.error("bench gateway: --sockets takes counts from 1 to 15,000, e.g. 1000,10000");
  process.exit(2);
}

/** Compiles the bare server the way build.ts compiles exoclaw: bytecode, minified ESM, no bunfig/.env. */
async function buildBare(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "exoclaw-bench-bare-"));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const outfile = join(dir, "bare-bun-serve");
  const r = await Bun.build({
    entrypoints: [join(import.meta.dir, "_bare-ws.ts")],
    target: "bun",
    format: "esm",
    bytecode: true,
    minify: true,
    compile: { outfile, autoloadBunfig: false, autoloadDotenv: false },
    throw: false,
  });
  if (!r.success) throw new Error(`could not compile the bare Bun.serve binary: ${r.logs.map(String).join("; ")}`);
  return outfile;
}

async function openSockets(port: number, n: number): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  // In batches, so the listen backlog never overflows.
  for (let i = 0; i < n; i += 250) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(250, n - i) },
        () =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
            ws.onopen = () => resolve(ws);
            ws.onerror = () => reject(new Error(`socket ${out.length + 1} of ${n} failed to open`));
          }),
      ),
    );
    out.push(...batch);
  }
  return out;
}

async function closeAll(socks: WebSocket[]): Promise<void> {
  await Promise.all(
    socks.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.onclose = () => resolve();
          ws.close();
        }),
    ),
  );
}

/** Each socket keeps `depth` pings in flight for SECONDS; returns round trips/s and latency. */
async function pingLoad(port: number, sockets: number, depth: number) {
  const socks = await openSockets(port, sockets);
  const lat: number[] = [];
  let done = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    socks.map(
      (ws) =>
        new Promise<void>((resolve, reject) => {
          let id = 0;
          let outstanding = 0;
          const sentAt = new Map<number, number>();
          const send = () => {
            id++;
            sentAt.set(id, performance.now());
            outstanding++;
            ws.send(`{"jsonrpc":"2.0","id":${id},"method":"ping"}`);
          };
          ws.onmessage = (ev) => {
            const m = JSON.parse(ev.data as string) as { id: number; result?: unknown };
            if (m.result !== "pong") return reject(new Error(`ping answered ${String(ev.data).slice(0, 200)}`));
            lat.push(performance.now() - sentAt.get(m.id)!);
            sentAt.delete(m.id);
            outstanding--;
            done++;
            if (performance.now() < end) send();
            else if (outstanding === 0) resolve();
          };
          ws.onclose = () => reject(new Error("the server closed a ping socket"));
          for (let i = 0; i < depth; i++) send();
        }),
    ),
  );
  const elapsed = (performance.now() - t0) / 1000;
  for (const ws of socks) ws.onclose = null;
  await closeAll(socks);
  return { rps: done / elapsed, p50: summarize(lat).median, p99: summarize(lat).p99 };
}

/** KiB per idle socket: RSS with `n` sockets open and settled, minus RSS before, over n. */
async function perSocket(g: GatewayProcess, n: number): Promise<number> {
  await Bun.sleep(IDLE_MS);
  const before = rssKiB(g.proc.pid);
  const socks = await openSockets(g.port, n);
  await Bun.sleep(IDLE_MS);
  const after = rssKiB(g.proc.pid);
  await closeAll(socks);
  return (after - before) / n;
}

interface ChildRss {
  pid: number;
  /** RSS before any plugin was called */
  idle: number;
  /** RSS after one call of each plugin */
  called: number;
  /** PSS after one call of each plugin */
  pss: number;
}

/**
 * The plugin-host children (one per loaded plugin: a lane's first process is spawned at load and
 * kept), in pid order, before and after one call of each plugin (echo, remember, http_get through a
 * turn; the http channel through a webhook). The tool plugins load in parallel, so which child is
 * which tool plugin cannot be told from outside; the channel plugin loads last (highest pid).
 */
async function pluginChildren(g: GatewayProcess): Promise<ChildRss[]> {
  const pids = childrenOf(g.proc.pid).sort((a, b) => a - b);
  const idle = pids.map(rssKiB);
  const client = await openClient(g.port);
  for (const tool of ["echo", "remember", "http_get"])
    await client.turn({ content: `tool:${tool}`, peer: `children-${tool}` });
  client.close();
  await webhookTurn(g.port, { peer: "children", text: "hi", id: `children-${Date.now()}` });
  await Bun.sleep(IDLE_MS);
  const now = new Set(childrenOf(g.proc.pid));
  const gone = pids.filter((p) => !now.has(p));
  if (gone.length) throw new Error(`plugin-host children ${gone.join(", ")} ended during single calls`);
  const extra = [...now].filter((p) => !pids.includes(p));
  return [...pids, ...extra.sort((a, b) => a - b)].map((pid, i) => ({
    pid,
    idle: idle[i] ?? NaN,
    called: rssKiB(pid),
    pss: pssKiB(pid),
  }));
}

await runBench("gateway", async () => {
  if (!existsSync(BINARY))
    throw new Error(`no binary at ${BINARY}: run \`bun build.ts --native\` first, or pass --binary`);
  printHeader(
    "gateway",
    args,
    `${RUNS} cold starts per side, ${SECONDS} s ping windows, ${SOCKETS.join(" / ")} idle sockets; binary ${BINARY} (built ${statSync(BINARY).mtime.toISOString()})`,
  );
  const bare = await step("compile the bare Bun.serve binary", 120_000, buildBare);
  const compiled = [BINARY];
  const startBare = () => startGateway([bare], { args: (port) => ["--port", String(port)] });

  // 1. Cold start, zero config, three sides interleaved.
  const cold = await step("cold starts", 60_000 + RUNS * 3 * 15_000, () =>
    interleave(RUNS, {
      compiled: async () => {
        const g = await startGateway(compiled);
        await g.stop();
        return g.startMs;
      },
      bare: async () => {
        const g = await startBare();
        await g.stop();
        return g.startMs;
      },
      source: async () => {
        const g = await startGateway(FROM_SOURCE);
        await g.stop();
        return g.startMs;
      },
    }),
  );

  // 2. Idle RSS with the built-in plugins loaded, and each plugin-host child's RSS.
  const upstream = startUpstream();
  const config = gatewayConfig(upstream.port!);
  const children: ChildRss[][] = [];
  const after: number[] = [];
  const idle = await step("idle RSS and plugin children", 60_000 + reps * 30_000, () =>
    interleave(reps, {
      exoclaw: async () => {
        const g = await startGateway(compiled, { config });
        await Bun.sleep(IDLE_MS);
        const kib = rssKiB(g.proc.pid);
        children.push(await pluginChildren(g));
        after.push(rssKiB(g.proc.pid));
        await g.stop();
        return kib;
      },
      bare: async () => {
        const g = await startBare();
        await Bun.sleep(IDLE_MS);
        const kib = rssKiB(g.proc.pid);
        await g.stop();
        return kib;
      },
    }),
  );

  // 3. RSS per idle WebSocket.
  const sockets: { n: number; exoclaw: number[]; bare: number[] }[] = [];
  for (const n of SOCKETS) {
    const r = await step(`RSS per socket at ${n}`, 60_000 + reps * 2 * (30_000 + n * 10), () =>
      interleave(reps, {
        exoclaw: async () => {
          const g = await startGateway(compiled);
          const kib = await perSocket(g, n);
          await g.stop();
          return kib;
        },
        bare: async () => {
          const g = await startBare();
          const kib = await perSocket(g, n);
          await g.stop();
          return kib;
        },
      }),
    );
    sockets.push({ n, ...r });
  }

  // 4. Ping round trips, one gateway and one bare server for the whole section.
  const gw = await startGateway(compiled);
  const floor = await startBare();
  const pings: {
    label: string;
    exoclaw: Awaited<ReturnType<typeof pingLoad>>[];
    bare: Awaited<ReturnType<typeof pingLoad>>[];
  }[] = [];
  for (const [n, depth] of [
    [1, 1],
    [1, 32],
    [100, 1],
    [100, 8],
  ] as const) {
    const r = await step(`ping over ${n} socket(s), ${depth} in flight`, 60_000 + reps * SECONDS * 2 * 3000, () =>
      interleave(reps, { exoclaw: () => pingLoad(gw.port, n, depth), bare: () => pingLoad(floor.port, n, depth) }),
    );
    pings.push({ label: `ping round trips/s, ${n} socket${n === 1 ? "" : "s"}, ${depth} in flight each`, ...r });
  }
  const rssAfterLoad = rssKiB(gw.proc.pid);
  await gw.stop();
  await floor.stop();

  const c = summarize(cold.compiled);
  const overFloor = summarize(pairDiffs(cold.compiled, cold.bare));
  const counts = summarize(children.map((run) => run.length));
  const childRows = Array.from({ length: Math.max(...children.map((run) => run.length)) }, (_, k) => {
    const runs = children.map((run) => run[k]).filter((ch) => ch !== undefined);
    return [
      `RSS of plugin-host child ${k + 1} (pid order${k === 3 ? "; the http channel's" : ""}), idle → after one call of each plugin`,
      `${spread(summarize(runs.map((ch) => ch.idle)), mib)} → ${spread(summarize(runs.map((ch) => ch.called)), mib)}`,
      "",
      "",
    ];
  });
  const childTotal = summarize(children.map((run) => run.reduce((s, ch) => s + ch.called, 0)));
  const idleX = summarize(idle.exoclaw);
  const withChildren = summarize(after.map((k, i) => k + (children[i] ?? []).reduce((s, ch) => s + ch.called, 0)));
  const childPss = summarize(children.map((run) => run.reduce((s, ch) => s + ch.pss, 0)));
  const f = (n: number) => `${n.toFixed(1)} ms`;
  const kib = (n: number) => `${n.toFixed(1)} KiB`;
  table(
    ["measure", "exoclaw", "baseline in the same run", "goal"],
    [
      [
        `cold start of the compiled binary to the first 200 from /health, median (${RUNS > 9 ? "p25–p75" : "min–max"}) of ${RUNS}`,
        spread(c, f),
        `compiled bare Bun.serve: ${spread(summarize(cold.bare), f)}`,
        goal(c.median, "≤", 50, ms),
      ],
      [
        "cold start over the floor: per-pair difference (compiled − bare), median / p90",
        `${f(overFloor.median)} / ${f(overFloor.p90)}`,
        "",
        "",
      ],
      [
        "cold start of `bun src/main.ts`, median",
        spread(summarize(cold.source), f),
        `per-pair ratio to the compiled binary: ${spread(summarize(pairRatios(cold.source, cold.compiled)), ratio)}`,
        "",
      ],
      [
        `idle RSS, compiled, built-in plugins loaded (echo, notes, http-get, http channel), median (min–max) of ${reps}`,
        spread(idleX, mib),
        `compiled bare Bun.serve: ${spread(summarize(idle.bare), mib)}; per-pair difference ${spread(summarize(pairDiffs(idle.exoclaw, idle.bare)), mib)}`,
        goal((idleX.median * 1024) / 1e6, "≤", 60, (n) => `${n.toFixed(1)} MB`),
      ],
      ["plugin-host children alive at idle (one per loaded plugin)", spread(counts, (n) => n.toFixed(0)), "", ""],
      ...childRows,
      [
        "after one call of each plugin: the children's RSS together / gateway + children",
        `${spread(childTotal, mib)} / ${spread(withChildren, mib)}`,
        "",
        "",
      ],
      [
        "the children's PSS together (shared pages of the binary split among the processes)",
        spread(childPss, mib),
        "",
        "",
      ],
      ...sockets.map((s) => [
        `RSS per idle WebSocket at ${int(s.n)} sockets, median (min–max)`,
        spread(summarize(s.exoclaw), kib),
        `bare: ${spread(summarize(s.bare), kib)}; per-pair difference ${spread(summarize(pairDiffs(s.exoclaw, s.bare)), kib)}`,
        "",
      ]),
      ...pings.map((p) => [
        `${p.label}, median (min–max) of ${reps}`,
        `${spread(summarize(p.exoclaw.map((x) => x.rps)), int)} (p50 ${ms(summarize(p.exoclaw.map((x) => x.p50)).median)})`,
        `bare: ${spread(summarize(p.bare.map((x) => x.rps)), int)}; per-pair ratio ${spread(
          summarize(
            pairRatios(
              p.exoclaw.map((x) => x.rps),
              p.bare.map((x) => x.rps),
            ),
          ),
          ratio,
        )}`,
        "",
      ]),
      ["RSS after the ping runs", mib(rssAfterLoad), "", ""],
    ],
  );
});
