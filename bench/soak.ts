/**
 * Soak: a bounded run of steady traffic against one gateway, its memory sampled as it goes.
 * Chat turns with a 3-round tool loop (echo in the sandbox) over WebSockets and messages to the
 * http channel's webhook; RSS of the gateway and of its plugin-host children every --sample seconds.
 * First the fill: the same traffic, unpaced, until each of the 1,500 sessions has a full history
 * window (the runner's bounded history cache is then at its bound; its gauges are read from
 * /metrics). Then --minutes at a fixed pace. The warm-up is the fill plus the first fifth of
 * --minutes (at most 5 minutes); growth after it is reported from the RSS at its end to the end, as a
 * least-squares slope, and as the issue-15 verdict (≤ 5%, from the medians of the first and last
 * minute). Every turn must end `end_turn`; anything else fails the run.
 *
 *   bun build.ts --native && bun bench/soak.ts [--minutes 30] [--rate 40] [--sample 5]
 *     [--binary dist/exoclaw-linux-x64 | --source | --heap FILE] [--smoke]
 */
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import {
  type Client,
  FROM_SOURCE,
  gatewayConfig,
  openClient,
  REPLY,
  startGateway,
  startUpstream,
  upstreamCalls,
  webhookTurn,
} from "./_gateway.ts";
import {
  benchArgs,
  childrenOf,
  goal,
  int,
  mib,
  num,
  printHeader,
  ROOT,
  rssKiB,
  runBench,
  step,
  table,
} from "./_lib.ts";

const args = benchArgs(
  "soak",
  {
    minutes: { type: "string" },
    rate: { type: "string" },
    sample: { type: "string" },
    binary: { type: "string" },
    source: { type: "boolean" },
    heap: { type: "string" },
  },
  24 * 3600,
);
const { smoke } = args;
const MINUTES = num(args.values.minutes, 30, smoke, 0.05);
const RATE = num(args.values.rate, 40, smoke, 40);
const SAMPLE_S = num(args.values.sample, 5, smoke, 0.25);
const WARMUP_S = Math.min(300, (MINUTES * 60) / 5);
const binary = args.values.binary ?? join(ROOT, "dist/exoclaw-linux-x64");
const heapFile = args.values.heap;
const useSource =
  heapFile !== undefined || args.values.source === true || (args.values.binary === undefined && !existsSync(binary));
if (args.values.binary !== undefined && !existsSync(binary)) {
  console.error(`bench soak: no binary at ${binary}`);
  process.exit(1);
}
const WS_WORKERS = 4;
const HOOK_WORKERS = 2;
/** Sessions per worker: 1,000 WebSocket sessions and 500 webhook sessions in all. */
const PEERS = 250;
/**
 * The runner keeps the history window (`[memory] episodic_turns` × 4 = 80 messages by default) of
 * the 1,000 most recently used sessions (docs/memory.md): bounded, but full only once sessions have
 * had a window's worth of turns — 10 tool-loop turns (8 messages each) or 40 webhook turns (2 each),
 * which at --rate 40 takes 25 minutes. The fill runs those turns before the clock starts, so the
 * warm-up and the measured window both see the cache at its bound (the gauges printed show it).
 */
const HISTORY_WINDOW = 20 * 4;
const FILL = smoke
  ? { toolRounds: 0, hookRounds: 0 }
  : { toolRounds: Math.ceil(HISTORY_WINDOW / 8), hookRounds: Math.ceil(HISTORY_WINDOW / 2) };

interface HistoryCache {
  sessions: number;
  messages: number;
}

/** The runner's history-cache gauges from /metrics (loopback needs no token). */
async function historyCache(port: number): Promise<HistoryCache> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
  return { sessions: gauge("exoclaw_history_cache_sessions"), messages: gauge("exoclaw_history_cache_messages") };
}

const cacheText = (c: HistoryCache) => `${int(c.sessions)} sessions, ${int(c.messages)} messages`;

/**
 * With --heap: the gateway's own probe lines (bench/_heap-probe.ts, a full collection before each),
 * the live JS heap and its object count at the warm-up's end and at the end, beside the RSS then,
 * and the object types that grew most in between.
 */
function heapTable(file: string, warmedAt: number): void {
  const lines = readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as HeapLine);
  const from = lines.find((l) => l.t >= warmedAt);
  const to = lines.at(-1);
  if (!from || !to || from === to) return void console.log("\n(--heap: too few probe lines after the warm-up)");
  const kib = (b: number) => mib(b / 1024);
  const grew = Object.keys({ ...from.types, ...to.types })
    .map((k) => [k, (to.types[k] ?? 0) - (from.types[k] ?? 0)] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
  table(
    [
      "gateway, after a full collection (--heap)",
      `${from.t.toFixed(0)} s (warm-up's end)`,
      `${to.t.toFixed(0)} s (end)`,
    ],
    [
      ["RSS", kib(from.rss), kib(to.rss)],
      [
        "live JS heap (heapSize) / its capacity",
        `${kib(from.heapSize)} / ${kib(from.heapCapacity)}`,
        `${kib(to.heapSize)} / ${kib(to.heapCapacity)}`,
      ],
      ["extra memory (buffers owned by JS objects)", kib(from.extraMemorySize), kib(to.extraMemorySize)],
      ["live objects", int(from.objectCount), int(to.objectCount)],
      ["object types that grew most", "", grew.map(([k, d]) => `${k} ${d >= 0 ? "+" : ""}${int(d)}`).join(", ")],
    ],
  );
}

interface HeapLine {
  t: number;
  rss: number;
  heapSize: number;
  heapCapacity: number;
  extraMemorySize: number;
  objectCount: number;
  types: Record<string, number>;
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/**
 * The issue-15 goal's verdict (growth after the warm-up ≤ 5%) from the samples after the warm-up,
 * two ways, each as a share of where it starts: the least-squares line's rise over the window, and
 * the median RSS of the last minute against the median of the first. Met only when both are: one
 * sample pair (end minus start) is not used, the collector's sawtooth moves a single sample by ±20%.
 */
function growthVerdict(warm: readonly Sample[], k: "gateway" | "children"): string {
  if (warm.length < 2) return "n/a (fewer than 2 samples after the warm-up)";
  const t0 = warm[0]!.t;
  const t1 = warm.at(-1)!.t;
  const perS = slope(
    warm.map((s) => s.t),
    warm.map((s) => s[k]),
  );
  const mean = warm.reduce((a, s) => a + s[k], 0) / warm.length;
  const meanT = warm.reduce((a, s) => a + s.t, 0) / warm.length;
  const fitFrom = mean + perS * (t0 - meanT);
  const fit = (100 * perS * (t1 - t0)) / fitFrom;
  const span = Math.min(60, (t1 - t0) / 2);
  const from = median(warm.filter((s) => s.t <= t0 + span).map((s) => s[k]));
  const to = median(warm.filter((s) => s.t >= t1 - span).map((s) => s[k]));
  const med = (100 * (to - from)) / from;
  const pct = (n: number) => `${n.toFixed(1)}%`;
  return `fitted line ${mib(fitFrom)} → ${mib(fitFrom + perS * (t1 - t0))} = ${pct(fit)}; medians of the first and last ${span.toFixed(0)} s ${mib(from)} → ${mib(to)} = ${pct(med)}: ${goal(Math.max(fit, med), "≤", 5, pct)}`;
}

interface Sample {
  t: number;
  gateway: number;
  children: number;
  processes: number;
  turns: number;
  webhooks: number;
  /** 1-minute load average (the machine may be shared) */
  load: number;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) (num += (xs[i]! - mx) * (ys[i]! - my)), (den += (xs[i]! - mx) ** 2);
  return den === 0 ? 0 : num / den;
}

await runBench("soak", async () => {
  printHeader(
    "soak",
    { smoke },
    `fill (every session's history window: ${FILL.toolRounds} turns × ${WS_WORKERS * PEERS} WebSocket sessions, ${FILL.hookRounds} × ${HOOK_WORKERS * PEERS} webhook sessions, unpaced), then ${MINUTES} min at ${RATE} requests/s (${WS_WORKERS} WebSocket tool-loop workers, ${HOOK_WORKERS} webhook workers), RSS every ${SAMPLE_S} s, warm-up: the fill + ${WARMUP_S.toFixed(0)} s; gateway ${useSource ? "bun src/main.ts" : binary}`,
  );
  const upstream = startUpstream();
  const gw = await step("start the gateway", 30_000, () =>
    startGateway(
      heapFile !== undefined
        ? [FROM_SOURCE[0], "--preload", join(ROOT, "bench/_heap-probe.ts"), FROM_SOURCE[1]]
        : useSource
          ? FROM_SOURCE
          : [binary],
      {
        config: gatewayConfig(upstream.port!),
        env:
          heapFile !== undefined
            ? { EXOCLAW_HEAP_PROBE: heapFile, EXOCLAW_HEAP_PROBE_MS: String(SAMPLE_S * 1000) }
            : {},
      },
    ),
  );
  const clients: Client[] = await step("open the sockets", 10_000, () =>
    Promise.all(Array.from({ length: WS_WORKERS }, () => openClient(gw.port))),
  );
  const counts = { turns: 0, webhooks: 0 };
  const samples: Sample[] = [];
  const t0 = performance.now();
  const sample = () => {
    const pids = childrenOf(gw.proc.pid);
    const children = pids.reduce((s, pid) => s + (rssKiB(pid) || 0), 0);
    samples.push({
      t: (performance.now() - t0) / 1000,
      gateway: rssKiB(gw.proc.pid),
      children,
      processes: pids.length,
      turns: counts.turns,
      webhooks: counts.webhooks,
      load: loadavg()[0]!,
    });
  };
  sample();
  const sampler = setInterval(sample, SAMPLE_S * 1000);
  // One loop per worker; `n` carries on from the fill into the paced run (same peers, fresh ids).
  const next = Array.from({ length: WS_WORKERS + HOOK_WORKERS }, () => 0);
  const work: ((n: number) => Promise<void>)[] = [
    ...clients.map((c, w) => async (n: number) => {
      const r = await c.turn({ content: "tools please", peer: `soak-${w}-${n % PEERS}` });
      if (!r.text.endsWith(REPLY)) throw new Error(`a soak turn answered ${JSON.stringify(r.text)}`);
      counts.turns++;
    }),
    ...Array.from({ length: HOOK_WORKERS }, (_, w) => async (n: number) => {
      await webhookTurn(gw.port, { peer: `hook-${w}-${n % PEERS}`, text: `message ${n}`, id: `soak-${w}-${n}` });
      counts.webhooks++;
    }),
  ];
  // The fill: as fast as the gateway answers (still one request in flight per worker), until every
  // session has its full history window, so the history cache is at its bound before the clock starts.
  await step("fill the history windows", 30 * 60_000, () =>
    Promise.all(
      work.map(async (fn, i) => {
        const rounds = i < WS_WORKERS ? FILL.toolRounds : FILL.hookRounds;
        for (; next[i]! < PEERS * rounds; next[i]!++) await fn(next[i]!);
      }),
    ),
  );
  const filled = { t: (performance.now() - t0) / 1000, cache: await historyCache(gw.port), ...counts };
  sample();
  const end = performance.now() + MINUTES * 60_000;
  // Each worker paces itself to its share of RATE; a slow gateway lowers the rate, never queues.
  const interval = ((WS_WORKERS + HOOK_WORKERS) / RATE) * 1000;
  let warmedCache: HistoryCache | null = null;
  const warmedAt = filled.t + WARMUP_S;
  const warmTimer = setTimeout(() => void historyCache(gw.port).then((c) => (warmedCache = c)), WARMUP_S * 1000);
  await step("soak", MINUTES * 60_000 + 120_000, () =>
    Promise.all(
      work.map(async (fn, i) => {
        for (; performance.now() < end; next[i]!++) {
          const due = performance.now() + interval;
          await fn(next[i]!);
          const wait = due - performance.now();
          if (wait > 0) await Bun.sleep(wait);
        }
      }),
    ),
  );
  clearTimeout(warmTimer);
  const endCache = await historyCache(gw.port);
  clearInterval(sampler);
  sample();
  for (const c of clients) c.close();
  await gw.stop();

  const warm = samples.filter((s) => s.t >= warmedAt);
  const first = warm[0] ?? samples.at(-1)!;
  const last = samples.at(-1)!;
  const perHour = (k: "gateway" | "children") =>
    warm.length >= 2
      ? slope(
          warm.map((s) => s.t),
          warm.map((s) => s[k]),
        ) * 3600
      : NaN;
  const maxOf = (k: "gateway" | "children") => Math.max(...warm.map((s) => s[k]));
  const elapsed = last.t;
  const every = Math.max(1, Math.ceil(samples.length / 12));
  table(
    ["t", "gateway RSS", "plugin-host children RSS (count)", "turns", "webhooks"],
    samples
      .filter((_, i) => i % every === 0 || i === samples.length - 1)
      .map((s) => [
        `${s.t.toFixed(1)} s`,
        mib(s.gateway),
        `${mib(s.children)} (${s.processes})`,
        int(s.turns),
        int(s.webhooks),
      ]),
  );
  const growth = (k: "gateway" | "children") =>
    `${mib(last[k] - first[k])} (${mib(first[k])} → ${mib(last[k])}; max ${mib(maxOf(k))}; slope ${Number.isNaN(perHour(k)) ? "n/a" : `${mib(perHour(k))}/h`})`;
  table(
    ["measure", "figure"],
    [
      [
        "traffic",
        `${int(counts.turns)} tool-loop turns + ${int(counts.webhooks)} webhook turns in ${elapsed.toFixed(0)} s (${((counts.turns + counts.webhooks) / elapsed).toFixed(1)}/s), every one end_turn`,
      ],
      [
        "1-minute load average over the samples after the warm-up: median, max",
        `${median(warm.map((s) => s.load)).toFixed(2)}, ${Math.max(...warm.map((s) => s.load)).toFixed(2)} (${cpus().length} cores${Math.max(...warm.map((s) => s.load)) > cpus().length ? ": a busy machine" : ""})`,
      ],
      [
        "model calls answered by the fake upstream (a tool-loop turn makes 4, 3 of them tool calls; a webhook turn 1)",
        `${int(upstreamCalls.total)}, ${int(upstreamCalls.toolCalls)} of them tool calls`,
      ],
      [
        "fill (before the clock): every session's history window",
        `${int(filled.turns)} tool-loop + ${int(filled.webhooks)} webhook turns (${FILL.toolRounds} and ${FILL.hookRounds} per session) in ${filled.t.toFixed(0)} s; history cache then ${cacheText(filled.cache)}`,
      ],
      [
        "history cache at the warm-up's end → at the end (bound: 1,000 sessions × 80 messages)",
        `${warmedCache ? cacheText(warmedCache) : "n/a"} → ${cacheText(endCache)}`,
      ],
      [
        `gateway RSS growth after the warm-up (fill + ${WARMUP_S.toFixed(0)} s, ${warm.length} samples)`,
        growth("gateway"),
      ],
      ["plugin-host children RSS growth after the warm-up", growth("children")],
      ["goal (issue 15): gateway RSS growth after the warm-up", growthVerdict(warm, "gateway")],
      ["goal (issue 15): plugin-host children RSS growth after the warm-up", growthVerdict(warm, "children")],
    ],
  );
  if (heapFile !== undefined) heapTable(heapFile, warmedAt);
});
