/**
 * Soak: a bounded run of steady traffic against one gateway, its memory sampled as it goes.
 * Chat turns with a 3-round tool loop (echo in the sandbox) over WebSockets and messages to the
 * http channel's webhook, at a fixed pace, for --minutes; RSS of the gateway and of its plugin-host
 * children every --sample seconds. Growth is reported after the warm-up (the first fifth, at most
 * 5 minutes): from the RSS at the end of the warm-up to the end, and as a least-squares slope.
 * Every turn must end `end_turn`; anything else fails the run.
 *
 *   bun build.ts --native && bun bench/soak.ts [--minutes 30] [--rate 40] [--sample 5]
 *     [--binary dist/exoclaw-linux-x64 | --source] [--smoke]
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  type Client,
  FROM_SOURCE,
  gatewayConfig,
  openClient,
  REPLY,
  startGateway,
  startUpstream,
  webhookTurn,
} from "./_gateway.ts";
import { benchArgs, childrenOf, int, mib, num, printHeader, ROOT, rssKiB, runBench, step, table } from "./_lib.ts";

const args = benchArgs(
  "soak",
  {
    minutes: { type: "string" },
    rate: { type: "string" },
    sample: { type: "string" },
    binary: { type: "string" },
    source: { type: "boolean" },
  },
  24 * 3600,
);
const { smoke } = args;
const MINUTES = num(args.values.minutes, 30, smoke, 0.05);
const RATE = num(args.values.rate, 40, smoke, 40);
const SAMPLE_S = num(args.values.sample, 5, smoke, 0.25);
const WARMUP_S = Math.min(300, (MINUTES * 60) / 5);
const binary = args.values.binary ?? join(ROOT, "dist/exoclaw-linux-x64");
const useSource = args.values.source === true || (args.values.binary === undefined && !existsSync(binary));
if (args.values.binary !== undefined && !existsSync(binary)) {
  console.error(`bench soak: no binary at ${binary}`);
  process.exit(1);
}
const WS_WORKERS = 4;
const HOOK_WORKERS = 2;

interface Sample {
  t: number;
  gateway: number;
  children: number;
  processes: number;
  turns: number;
  webhooks: number;
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
    `${MINUTES} min at ${RATE} requests/s (${WS_WORKERS} WebSocket tool-loop workers, ${HOOK_WORKERS} webhook workers), RSS every ${SAMPLE_S} s, warm-up ${WARMUP_S.toFixed(0)} s; gateway ${useSource ? "bun src/main.ts" : binary}`,
  );
  const upstream = startUpstream();
  const gw = await step("start the gateway", 30_000, () =>
    startGateway(useSource ? FROM_SOURCE : [binary], { config: gatewayConfig(upstream.port!) }),
  );
  const clients: Client[] = await step("open the sockets", 10_000, () =>
    Promise.all(Array.from({ length: WS_WORKERS }, () => openClient(gw.port))),
  );
  const counts = { turns: 0, webhooks: 0 };
  const samples: Sample[] = [];
  const t0 = performance.now();
  const end = t0 + MINUTES * 60_000;
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
    });
  };
  sample();
  const sampler = setInterval(sample, SAMPLE_S * 1000);
  // Each worker paces itself to its share of RATE; a slow gateway lowers the rate, never queues.
  const interval = ((WS_WORKERS + HOOK_WORKERS) / RATE) * 1000;
  const paced = async (fn: (n: number) => Promise<void>) => {
    for (let n = 0; performance.now() < end; n++) {
      const next = performance.now() + interval;
      await fn(n);
      const wait = next - performance.now();
      if (wait > 0) await Bun.sleep(wait);
    }
  };
  await step("soak", MINUTES * 60_000 + 120_000, () =>
    Promise.all([
      ...clients.map((c, w) =>
        paced(async (n) => {
          const r = await c.turn({ content: "tools please", peer: `soak-${w}-${n % 250}` });
          if (!r.text.endsWith(REPLY)) throw new Error(`a soak turn answered ${JSON.stringify(r.text)}`);
          counts.turns++;
        }),
      ),
      ...Array.from({ length: HOOK_WORKERS }, (_, w) =>
        paced(async (n) => {
          await webhookTurn(gw.port, { peer: `hook-${w}-${n % 250}`, text: `message ${n}`, id: `soak-${w}-${n}` });
          counts.webhooks++;
        }),
      ),
    ]),
  );
  clearInterval(sampler);
  sample();
  for (const c of clients) c.close();
  await gw.stop();

  const warm = samples.filter((s) => s.t >= WARMUP_S);
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
      [`gateway RSS growth after the ${WARMUP_S.toFixed(0)} s warm-up (${warm.length} samples)`, growth("gateway")],
      ["plugin-host children RSS growth after the warm-up", growth("children")],
    ],
  );
  // The goal (issue 15): RSS growth after the warm-up ≤ 5% of the RSS at the warm-up's end, computed here.
  const verdict = (k: "gateway" | "children") => {
    const grew = last[k] - first[k];
    const share = (100 * grew) / first[k];
    const allowed = first[k] * 0.05;
    return share <= 5
      ? `${share.toFixed(1)}% ≤ 5% ✓`
      : `${share.toFixed(1)}% > 5% ✗ over by ${(share - 5).toFixed(1)} points (grew ${mib(grew)}; 5% of ${mib(first[k])} is ${mib(allowed)})`;
  };
  table(
    ["goal (issue 15): RSS growth after the warm-up, as a share of the RSS at its end", "verdict"],
    [
      ["growth of the gateway", verdict("gateway")],
      ["growth of the plugin-host children", verdict("children")],
    ],
  );
});
