/**
 * Connections and workers (issue 13), on the compiled binary:
 * - 100,000 concurrent WebSocket sessions on one box: `exoclaw gateway --workers W` (W = as many as
 *   the 20,000-open-files limit per process needs), clients in several processes (bench/_swarm.ts)
 *   from loopback source addresses 127.0.0.2 and up; every socket authenticated (Bearer) and
 *   pinged, `--reps` times on a fresh gateway. Reported: time to establish all and RSS per socket
 *   above the idle baseline (all workers summed; goal ≤ 3 KiB), median and spread over the runs,
 *   and ping p50/p99 over a sample while all are open (pooled over the runs).
 * - Turns per second with 1 and 2 workers in the same run, interleaved, against the fake upstream,
 *   and the gateway CPU per turn (supervisor + workers + their children). Client, fake upstream and
 *   gateway share this machine's cores: a second worker can only show what the cores left over allow.
 *
 *   bun build.ts --native && bun bench/connections.ts [--binary dist/exoclaw-linux-x64]
 *     [--sockets 100000] [--workers W] [--clients C] [--seconds 3] [--reps 5] [--smoke]
 */
import { join } from "node:path";
import { type Client, type GatewayProcess, openClient, startGateway, startUpstream } from "./_gateway.ts";
import {
  benchArgs,
  childrenOf,
  cpuMs,
  goal,
  int,
  interleave,
  mib,
  ms,
  num,
  onCleanup,
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
  "connections",
  {
    binary: { type: "string" },
    sockets: { type: "string" },
    workers: { type: "string" },
    clients: { type: "string" },
    seconds: { type: "string" },
  },
  1800,
);
const { smoke, reps } = args;
const BINARY = args.values.binary ?? join(ROOT, "dist/exoclaw-linux-x64");
const SOCKETS = num(args.values.sockets, 100_000, smoke, 400);
/** Per process (workers and clients alike) at most this many sockets: under 20,000 open files with room to spare. */
const PER_PROCESS = 16_000;
const WORKERS = num(args.values.workers, Math.max(2, Math.ceil(SOCKETS / PER_PROCESS)), smoke, 2);
const CLIENTS = num(args.values.clients, Math.max(2, Math.ceil(SOCKETS / PER_PROCESS)), smoke, 2);
const SECONDS = num(args.values.seconds, 3, smoke, 0.3);
const SAMPLE = smoke ? 10 : 500;
const TOKEN = "bench-connections-token";
const LOAD_SOCKETS = smoke ? 4 : 32;
const DEPTH = 4;

if (CLIENTS > 250) {
  console.error(`bench connections: at most 250 client processes (127.0.<rep>.2 to .251), got ${CLIENTS}`);
  process.exit(2);
}
if (SOCKETS / CLIENTS > 19_000) {
  console.error(
    `bench connections: ${int(SOCKETS)} sockets over ${CLIENTS} client processes is more than 19,000 each; raise --clients`,
  );
  process.exit(2);
}

/** The gateway's processes: the supervisor, its workers, and their children (plugin hosts). */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i]!));
  return out;
}
const rssOf = (pids: number[]) => pids.reduce((n, p) => n + (rssKiB(p) || 0), 0);
const cpuOf = (pids: number[]) =>
  pids.reduce((n, p) => {
    try {
      return n + cpuMs(p);
    } catch {
      return n;
    }
  }, 0);

/** Polls /ready until it reports `n` workers running; past 50 s fails with the last answer and the gateway's stderr. */
async function workersUp(gw: GatewayProcess, n: number): Promise<void> {
  const deadline = Date.now() + 50_000;
  let last = "no answer";
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${gw.port}/ready`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    }).catch((e: unknown) => e);
    const text = res instanceof Response ? await res.text().catch(() => "") : String(res);
    last = res instanceof Response ? `${res.status} ${text.slice(0, 600)}` : text;
    let body: { workers?: { running: number } } | null = null;
    try {
      body = JSON.parse(text);
    } catch {}
    if (body && (body.workers?.running ?? 1) >= n) return;
    if (Date.now() > deadline)
      throw new Error(
        `/ready did not report ${n} workers within 50 s; its last answer: ${last}; the gateway's stderr: ${gw.stderr().trim().split("\n").slice(-5).join(" / ")}`,
      );
    await Bun.sleep(50);
  }
}

interface Swarm {
  proc: Bun.Subprocess<"pipe", "pipe", "inherit">;
  next(): Promise<Record<string, unknown>>;
}

function swarm(port: number, count: number, from: string): Swarm {
  const proc = Bun.spawn(
    [
      process.execPath,
      join(ROOT, "bench/_swarm.ts"),
      "--port",
      String(port),
      "--count",
      String(count),
      "--from",
      from,
      "--token",
      TOKEN,
    ],
    { stdin: "pipe", stdout: "pipe", stderr: "inherit" },
  );
  onCleanup(() => proc.kill("SIGKILL"));
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  return {
    proc,
    async next() {
      for (;;) {
        const nl = buf.indexOf("\n");
        if (nl !== -1) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          return JSON.parse(line) as Record<string, unknown>;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error(`a client process from ${from} ended early (exit ${proc.exitCode})`);
        buf += decoder.decode(value, { stream: true });
      }
    },
  };
}

await runBench("connections", async () => {
  printHeader(
    "connections",
    args,
    `${int(SOCKETS)} sockets over ${WORKERS} workers from ${CLIENTS} client processes; turns/s with 1 vs 2 workers over ${LOAD_SOCKETS} sockets × ${DEPTH} in flight, ${SECONDS} s windows`,
  );

  // ---- 1. many sockets, `reps` times (a fresh gateway each time) ----
  const manySockets = async (rep: number) => {
    const gw = await step(`start the gateway workers (rep ${rep + 1})`, 60_000, () =>
      startGateway([BINARY], {
        args: (port) => ["gateway", "--port", String(port), "--workers", String(WORKERS)],
        env: { EXOCLAW_TOKEN: TOKEN },
      }),
    );
    await step(`wait for every worker (rep ${rep + 1})`, 60_000, () => workersUp(gw, WORKERS));
    const idleKiB = rssOf(tree(gw.proc.pid));
    const per = Math.ceil(SOCKETS / CLIENTS);
    const t0 = performance.now();
    // Fresh source addresses each run (127.0.<rep>.2 and up): the last run's closed sockets still
    // hold their ports in TIME_WAIT for a minute.
    const clients = Array.from({ length: CLIENTS }, (_, i) =>
      swarm(gw.port, Math.min(per, SOCKETS - i * per), `127.0.${rep % 256}.${2 + i}`),
    );
    const opened = await step(`open, authenticate and ping every socket (rep ${rep + 1})`, 600_000, () =>
      Promise.all(clients.map((c) => c.next())),
    );
    const establishMs = performance.now() - t0;
    const open = opened.reduce((n, o) => n + Number(o.open), 0);
    const failed = opened.reduce((n, o) => n + Number(o.failed), 0);
    if (failed > 0 || open !== SOCKETS)
      throw new Error(
        `${failed} of ${SOCKETS} sockets failed (${open} open): ${JSON.stringify(opened.map((o) => o.errors))}`,
      );
    // Let the workers settle (GC after the burst) before RSS is read.
    await Bun.sleep(smoke ? 100 : 2000);
    const openKiB = rssOf(tree(gw.proc.pid));
    const samples = await step("ping a sample while all are open", 120_000, async () => {
      for (const c of clients) c.proc.stdin.write(`sample ${Math.ceil(SAMPLE / CLIENTS)}\n`);
      const got = await Promise.all(clients.map((c) => c.next()));
      const closed = got.reduce((n, g) => n + Number(g.closed), 0);
      if (closed > 0) throw new Error(`${closed} of ${SOCKETS} sockets were closed while all should be open`);
      return got.flatMap((g) => g.ms as number[]);
    });
    if (samples.some((x) => x < 0)) throw new Error(`${samples.filter((x) => x < 0).length} sampled pings got no pong`);
    await step("close every socket", 60_000, async () => {
      for (const c of clients) {
        c.proc.stdin.write("close\n");
        c.proc.stdin.end();
      }
      await Promise.all(clients.map((c) => c.proc.exited));
    });
    await gw.stop();
    return { establishMs, open, idleKiB, openKiB, perSocket: (openKiB - idleKiB) / open, samples };
  };
  const many: Awaited<ReturnType<typeof manySockets>>[] = [];
  for (let rep = 0; rep < reps; rep++) many.push(await manySockets(rep));
  const open = Math.min(...many.map((m) => m.open));
  const establish = summarize(many.map((m) => m.establishMs));
  const perSocket = summarize(many.map((m) => m.perSocket));
  const idle = summarize(many.map((m) => m.idleKiB));
  const opened = summarize(many.map((m) => m.openKiB));
  const samples = many.flatMap((m) => m.samples);
  const ping = summarize(samples);

  // ---- 2. turns/s, 1 vs 2 workers ----
  const upstream = startUpstream();
  const config = `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "bench"\nbase_url = "http://127.0.0.1:${upstream.port}"\n`;
  const start = (n: number) =>
    step(`start a gateway with --workers ${n}`, 60_000, () =>
      startGateway([BINARY], { config, args: (port) => ["gateway", "--port", String(port), "--workers", String(n)] }),
    );
  const one = await start(1);
  const two = await start(2);
  await step("wait for the 2 workers", 60_000, () => workersUp(two, 2));
  const socketsOf = async (port: number) => Promise.all(Array.from({ length: LOAD_SOCKETS }, () => openClient(port)));
  const load: Record<"one" | "two", Client[]> = { one: await socketsOf(one.port), two: await socketsOf(two.port) };
  let fresh = 0;
  const window = async (side: "one" | "two") => {
    const pids = tree((side === "one" ? one : two).proc.pid);
    const cpu0 = cpuOf(pids);
    let done = 0;
    const end = performance.now() + SECONDS * 1000;
    const t = performance.now();
    await Promise.all(
      load[side].flatMap((s, si) =>
        Array.from({ length: DEPTH }, async (_, k) => {
          for (; performance.now() < end; done++)
            await s.turn({ content: "hi", peer: `${side}${si}-${k}-${fresh++ % 64}` });
        }),
      ),
    );
    return { rate: done / ((performance.now() - t) / 1000), cpuPerTurn: (cpuOf(pids) - cpu0) / done };
  };
  await step("warm up", 60_000, async () => {
    await window("one");
    await window("two");
  });
  const turns = await step("turn windows, interleaved", 120_000 + reps * SECONDS * 2 * 3000, () =>
    interleave(reps, { one: () => window("one"), two: () => window("two") }),
  );
  for (const s of [...load.one, ...load.two]) s.close();
  await one.stop();
  await two.stop();
  const rate = (xs: { rate: number }[]) => summarize(xs.map((x) => x.rate));
  const cpu = (xs: { cpuPerTurn: number }[]) => summarize(xs.map((x) => x.cpuPerTurn));
  const f1 = (n: number) => n.toFixed(1);

  table(
    ["measure", "value", "reference / goal"],
    [
      [
        `sockets open at once (${WORKERS} workers, ${CLIENTS} client processes), in each of ${reps} runs`,
        `${int(open)} of ${int(SOCKETS)}, every one authenticated and pinged`,
        "100,000",
      ],
      [
        `time to establish all (connect, upgrade, Bearer, first ping), median (min–max) of ${reps}`,
        spread(establish, ms),
        `${int(SOCKETS / (establish.median / 1000))} sockets/s`,
      ],
      [
        `RSS per socket above the idle baseline (all workers), median (min–max) of ${reps}`,
        `${spread(perSocket, (n) => `${f1(n)} KiB`)} (${mib(idle.median)} idle → ${mib(opened.median)})`,
        goal(perSocket.median, "≤", 3, (n) => `${f1(n)} KiB`),
      ],
      [
        `ping round trip while all are open (${samples.length} sampled over ${reps} runs, one at a time)`,
        `p50 ${ms(ping.median)} · p99 ${ms(ping.p99)}`,
        `max ${ms(ping.max)}`,
      ],
      [
        `turns/s, --workers 1, median (min–max) of ${reps}`,
        spread(rate(turns.one), f1),
        `gateway CPU per turn ${spread(cpu(turns.one), ms)}`,
      ],
      [
        `turns/s, --workers 2, median (min–max) of ${reps}`,
        spread(rate(turns.two), f1),
        `gateway CPU per turn ${spread(cpu(turns.two), ms)}; per-pair ratio ${spread(
          summarize(
            pairRatios(
              turns.two.map((x) => x.rate),
              turns.one.map((x) => x.rate),
            ),
          ),
          ratio,
        )}`,
      ],
    ],
  );
  console.log(
    "The client, the fake upstream and the gateway share this machine's cores: with 2 cores a second worker mostly competes with the load it serves.",
  );
});
