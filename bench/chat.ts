/**
 * Chat benchmarks: the gateway's overhead per turn against a zero-latency fake upstream (OpenAI's
 * streaming wire format), turns per second over many sockets, and a turn with a 3-round tool loop
 * through the sandbox (built-in echo plugin). Every sample is paired with its baseline in the same
 * run, interleaved: a turn through the gateway with the same streamed call made directly to the
 * upstream; a load window through the gateway with one of direct calls at the same concurrency.
 * Only `end_turn` counts as a turn: any other ending (error, budget, …) fails the run, naming it.
 *
 *   bun build.ts --native && bun bench/chat.ts [--turns 2000] [--seconds 3] [--reps 5]
 *     [--binary dist/exoclaw-linux-x64 | --source] [--smoke]
 *
 * The gateway runs as its own process: the compiled binary users run (`--source`: `bun src/main.ts
 * gateway`); this process is the fake upstream and the clients, so all three share the machine's
 * cores. `BENCH_PROF=1` runs `bun src/main.ts` with a CPU profile of the gateway written to /tmp/prof.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  type Client,
  directCall,
  FROM_SOURCE,
  gatewayConfig,
  openClient,
  REPLY,
  startGateway,
  startUpstream,
} from "./_gateway.ts";
import {
  benchArgs,
  cpuMs,
  goal,
  int,
  interleave,
  ms,
  num,
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

const args = benchArgs(
  "chat",
  {
    turns: { type: "string" },
    seconds: { type: "string" },
    sockets: { type: "string" },
    binary: { type: "string" },
    source: { type: "boolean" },
  },
  900,
);
const PROF = process.env.BENCH_PROF ? ["--cpu-prof-md", "--cpu-prof-dir=/tmp/prof"] : [];
const BINARY = args.values.binary ?? join(ROOT, "dist/exoclaw-linux-x64");
const useSource = args.values.source === true || PROF.length > 0;
const { smoke, reps } = args;
const TURNS = num(args.values.turns, 2000, smoke, 20);
const SECONDS = num(args.values.seconds, 3, smoke, 0.2);
const SOCKETS = num(args.values.sockets, 50, smoke, 5);
const DEPTH = 4;
const TOOL_TURNS = smoke ? 3 : 50;

await runBench("chat", async () => {
  if (!useSource && !existsSync(BINARY))
    throw new Error(`no binary at ${BINARY}: run \`bun build.ts --native\` first, pass --binary, or --source`);
  printHeader(
    "chat",
    args,
    `${TURNS} paired turns, ${TOOL_TURNS} paired tool-loop turns, ${SECONDS} s load windows over ${SOCKETS} sockets × ${DEPTH} in flight; gateway ${useSource ? "bun src/main.ts" : BINARY}`,
  );
  const upstream = startUpstream();
  const up = upstream.port!;
  const gw = await step("start the gateway", 30_000, () =>
    startGateway(useSource ? [FROM_SOURCE[0], ...PROF, FROM_SOURCE[1]] : [BINARY], {
      config: `${gatewayConfig(up)}\n[gateway]\n# 50 sockets × 4 in flight is 200 turns at once: above the default queue (32 running + 128 waiting)\nmax_queued_turns = 1024\n`,
    }),
  );
  const client = await step("open a socket", 10_000, () => openClient(gw.port));

  await step("warm up", 60_000, async () => {
    for (let i = 0; i < (smoke ? 5 : 200); i++) await client.turn({ content: "warm up", peer: `warm${i % 10}` });
    for (let i = 0; i < (smoke ? 5 : 200); i++) await directCall(up);
  });

  // 1. One turn at a time, each paired with a direct call; the pair's order alternates.
  const viaGateway: number[] = [];
  const direct: number[] = [];
  await step("paired turns", 120_000 + TURNS * 50, async () => {
    const r = await interleave(TURNS, {
      gateway: async (i) => {
        const t0 = performance.now();
        await client.turn({ content: "hi", peer: `p${i % 50}` });
        return performance.now() - t0;
      },
      direct: async () => {
        const t0 = performance.now();
        await directCall(up);
        return performance.now() - t0;
      },
    });
    viaGateway.push(...r.gateway);
    direct.push(...r.direct);
  });
  const overhead = summarize(pairDiffs(viaGateway, direct));

  // 2. A 3-round tool loop (4 model calls, 3 sandboxed echo calls) paired with 4 direct calls.
  const tool = await step("paired tool-loop turns", 120_000, () =>
    interleave(TOOL_TURNS, {
      gateway: async (i) => {
        const t0 = performance.now();
        const r = await client.turn({ content: "tools please", peer: `tool${i}` });
        if (!r.text.endsWith(REPLY)) throw new Error(`a tool-loop turn answered ${JSON.stringify(r.text)}`);
        return performance.now() - t0;
      },
      direct: async () => {
        const t0 = performance.now();
        for (let k = 0; k < 4; k++) await directCall(up);
        return performance.now() - t0;
      },
    }),
  );
  const toolOverhead = summarize(pairDiffs(tool.gateway, tool.direct));
  client.close();

  // 3. Throughput: SOCKETS × DEPTH turns in flight for SECONDS, against direct calls at the same concurrency.
  const sockets: Client[] = await step("open the load sockets", 30_000, () =>
    Promise.all(Array.from({ length: SOCKETS }, () => openClient(gw.port))),
  );
  async function window(run: (si: number, k: number, n: number) => Promise<unknown>) {
    const cpu0 = cpuMs(gw.proc.pid);
    let done = 0;
    const end = performance.now() + SECONDS * 1000;
    const t0 = performance.now();
    await Promise.all(
      sockets.flatMap((_, si) =>
        Array.from({ length: DEPTH }, async (_, k) => {
          for (let n = 0; performance.now() < end; n++) {
            await run(si, k, n);
            done++;
          }
        }),
      ),
    );
    return { rate: done / ((performance.now() - t0) / 1000), cpuPerTurn: (cpuMs(gw.proc.pid) - cpu0) / done };
  }
  let fresh = 0;
  const load = await step("load windows", 60_000 + reps * SECONDS * 3 * 3000, () =>
    interleave(reps, {
      newSessions: () => window((si, k) => sockets[si]!.turn({ content: "hi", peer: `fresh${si}-${k}-${fresh++}` })),
      ongoing: () => window((si, k) => sockets[si]!.turn({ content: "hi", peer: `load${si}-${k}` })),
      direct: () => window(() => directCall(up)),
    }),
  );
  for (const s of sockets) s.close();
  await gw.stop();

  const rate = (xs: { rate: number }[]) => summarize(xs.map((x) => x.rate));
  const cpu = (xs: { cpuPerTurn: number }[]) => summarize(xs.map((x) => x.cpuPerTurn));
  const g = summarize(viaGateway);
  const d = summarize(direct);
  const tg = summarize(tool.gateway);
  table(
    ["measure", "exoclaw", "baseline in the same run", "goal"],
    [
      [
        "turn through the gateway (chat.send → result), p50 / p99",
        `${ms(g.median)} / ${ms(g.p99)}`,
        `direct streamed call: ${ms(d.median)} / ${ms(d.p99)}`,
        "",
      ],
      [
        `gateway overhead per turn: per-pair difference (gateway − direct) over ${TURNS} pairs, median / p90 / p99`,
        `${ms(overhead.median)} / ${ms(overhead.p90)} / ${ms(overhead.p99)}`,
        "",
        `median ${goal(overhead.median, "≤", 1, ms)}; p99 ${goal(overhead.p99, "≤", 5, ms)}`,
      ],
      [
        "one turn with a 3-round tool loop (echo in the sandbox), p50 / p99",
        `${ms(tg.median)} / ${ms(tg.p99)}`,
        `4 direct calls: ${ms(summarize(tool.direct).median)}`,
        "",
      ],
      [
        `tool-loop overhead: per-pair difference over ${TOOL_TURNS} pairs, median / p90`,
        `${ms(toolOverhead.median)} / ${ms(toolOverhead.p90)}`,
        "",
        "",
      ],
      [
        `turns/s, ${SOCKETS} sockets × ${DEPTH} in flight, a new session each turn, median (min–max) of ${reps}`,
        spread(rate(load.newSessions), int),
        `direct calls/s at the same concurrency: ${spread(rate(load.direct), int)}`,
        goal(rate(load.newSessions).median, "≥", 5000, int),
      ],
      [
        `turns/s, ${SOCKETS} sockets × ${DEPTH} in flight, ${SOCKETS * DEPTH} ongoing sessions, median (min–max) of ${reps}`,
        spread(rate(load.ongoing), int),
        `per-pair ratio to direct: ${spread(
          summarize(
            pairRatios(
              load.ongoing.map((x) => x.rate),
              load.direct.map((x) => x.rate),
            ),
          ),
          ratio,
        )}`,
        goal(rate(load.ongoing).median, "≥", 5000, int),
      ],
      [
        "gateway CPU per turn (new / ongoing sessions), median",
        `${us(cpu(load.newSessions).median)} / ${us(cpu(load.ongoing).median)}`,
        "",
        "",
      ],
    ],
  );
});
