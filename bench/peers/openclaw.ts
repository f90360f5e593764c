/**
 * exoclaw and OpenClaw side by side, in one run, on loopback, against the same zero-latency fake
 * OpenAI-compatible upstream (bench/_gateway.ts): cold start to the first health answer, idle RSS
 * of the whole process tree, WebSocket request latency, and one chat turn's latency through each
 * gateway's OpenAI-compatible /v1/chat/completions. Ratios are OpenClaw / exoclaw. exoclaw runs
 * with its built-in plugins configured (echo, notes, http-get, the http channel: a plugin-host child
 * each); OpenClaw with the plugins it loads by default. Not part of
 * `npm test`: it installs from the npm registry.
 *
 *   bun bench/peers/openclaw.ts [--reps 5] [--turns 20] [--requests 500] [--binary dist/exoclaw-linux-x64] [--smoke]
 *
 * OpenClaw needs Node >= 24.16: the npm package `node` (which carries the Node binary) and
 * `openclaw`, both pinned below, are installed with npm into .cache/peers/ the first time (node
 * first, so OpenClaw's preinstall check sees it on PATH). Each start gets a fresh state directory
 * on both sides. The WebSocket request is the lightest each protocol has: exoclaw's `ping`,
 * OpenClaw's `last-heartbeat` (it has no ping) after its `connect` handshake with a token.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gatewayConfig, startGateway, startUpstream } from "../_gateway.ts";
import {
  benchArgs,
  childrenOf,
  fail,
  freePort,
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
  stopProcess,
  summarize,
  table,
  waitHealthy,
} from "../_lib.ts";

const OPENCLAW = "2026.9.6";
const NODE = "24.21.0";
const CACHE = join(ROOT, ".cache/peers");
const TOKEN = "bench-token-0123456789";

const args = benchArgs(
  "peers/openclaw",
  { turns: { type: "string" }, requests: { type: "string" }, binary: { type: "string" } },
  3600,
);
const { reps } = args;
const TURNS = num(args.values.turns, 20, args.smoke, 2);
const REQUESTS = num(args.values.requests, 500, args.smoke, 20);
const SETTLE_MS = args.smoke ? 500 : 5000;
const binary = args.values.binary ?? join(ROOT, "dist/exoclaw-linux-x64");

async function sh(cmd: string[], cwd: string, env: Record<string, string> = {}): Promise<void> {
  const p = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0)
    throw new Error(
      `\`${cmd.join(" ")}\` exited ${code}: ${(err.trim() || out.trim()).split("\n").slice(-3).join(" / ")}`,
    );
}

const nodeBin = join(CACHE, "node_modules/node/bin/node");
const openclawMjs = join(CACHE, "node_modules/openclaw/openclaw.mjs");
const pathWithNode = `${join(CACHE, "node_modules/.bin")}:${process.env.PATH ?? ""}`;

async function install(): Promise<void> {
  mkdirSync(CACHE, { recursive: true });
  if (!existsSync(join(CACHE, "package.json")))
    writeFileSync(join(CACHE, "package.json"), '{"name":"exoclaw-peers","private":true}\n');
  const npm = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"];
  if (!existsSync(nodeBin)) await sh([...npm, `node@${NODE}`], CACHE);
  if (!existsSync(openclawMjs))
    await sh([...npm, `node@${NODE}`, `openclaw@${OPENCLAW}`], CACHE, { PATH: pathWithNode });
}

/** RSS of a process and all its descendants, and how many processes that is. */
function treeRss(pid: number): { kib: number; processes: number } {
  const seen = new Set<number>();
  const walk = (p: number) => {
    if (seen.has(p)) return;
    seen.add(p);
    for (const c of childrenOf(p)) walk(c);
  };
  walk(pid);
  let kib = 0;
  for (const p of seen) kib += rssKiB(p) || 0;
  return { kib, processes: seen.size };
}

interface Running {
  pid: number;
  port: number;
  startMs: number;
  stop(): Promise<void>;
}

async function startOpenclaw(upstreamPort: number): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), "exoclaw-bench-openclaw-"));
  const port = freePort();
  const config = {
    gateway: {
      mode: "local",
      port,
      bind: "loopback",
      auth: { mode: "token", token: TOKEN },
      http: { endpoints: { chatCompletions: { enabled: true } } },
    },
    agents: { defaults: { model: { primary: "bench/bench" } } },
    models: {
      mode: "merge",
      providers: {
        bench: {
          baseUrl: `http://127.0.0.1:${upstreamPort}/v1`,
          apiKey: "sk-bench",
          api: "openai-completions",
          models: [
            {
              id: "bench",
              name: "bench",
              reasoning: false,
              input: ["text"],
              cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
              contextWindow: 128000,
              maxTokens: 4096,
            },
          ],
        },
      },
    },
  };
  writeFileSync(join(dir, "openclaw.json"), JSON.stringify(config, null, 2));
  const t0 = performance.now();
  const proc = Bun.spawn([nodeBin, openclawMjs, "gateway", "--port", String(port)], {
    cwd: dir,
    env: {
      PATH: pathWithNode,
      HOME: join(dir, "home"),
      OPENCLAW_STATE_DIR: join(dir, "state"),
      OPENCLAW_CONFIG_PATH: join(dir, "openclaw.json"),
      TMPDIR: dir,
      NO_COLOR: "1",
    },
    stdout: "ignore",
    stderr: "ignore",
    detached: true,
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const tree = [...new Set([proc.pid, ...childrenOf(proc.pid)])];
    await stopProcess(proc);
    for (const p of tree) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  onCleanup(stop);
  await waitHealthy(`http://127.0.0.1:${port}/health`, proc, 120_000);
  return { pid: proc.pid, port, startMs: performance.now() - t0, stop };
}

async function startExoclaw(upstreamPort: number): Promise<Running> {
  const cmd = existsSync(binary) ? [binary] : [process.execPath, join(ROOT, "src/main.ts")];
  // With its built-in plugins configured (a plugin-host child each), as OpenClaw loads its bundled ones.
  const config = `[gateway]\nopenai_compat = true\n\n${gatewayConfig(upstreamPort)}`;
  const g = await startGateway(cmd, { config });
  return { pid: g.proc.pid, port: g.port, startMs: g.startMs, stop: g.stop };
}

/** One non-streamed turn through /v1/chat/completions; throws unless the fake upstream's whole text came back. */
async function turn(port: number, model: string, auth: boolean): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(auth && { authorization: `Bearer ${TOKEN}` }) },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
  });
  const body = await res.text();
  const t = performance.now() - t0;
  let choice: { message?: { content?: string }; finish_reason?: string } | undefined;
  try {
    choice = (JSON.parse(body) as { choices?: (typeof choice)[] }).choices?.[0];
  } catch {
    // not JSON: reported below
  }
  // Only a whole answer counts: the fake upstream's text, finished with "stop" (OpenAI's end_turn).
  if (res.status !== 200 || choice?.message?.content !== "Hello from the bench." || choice.finish_reason !== "stop")
    throw new Error(`a turn through ${model} answered ${res.status}: ${body.slice(0, 300)}`);
  return t;
}

/** Sequential WebSocket request round trips (after each protocol's handshake). */
async function wsLatency(
  url: string,
  handshake: ((ws: WebSocket, m: Record<string, unknown>) => boolean) | null,
  request: (id: number) => string,
  isAnswer: (m: Record<string, unknown>, id: number) => boolean,
): Promise<number[]> {
  const ws = new WebSocket(url);
  const lat: number[] = [];
  await new Promise<void>((resolve, reject) => {
    let id = 0;
    let sentAt = 0;
    let ready = handshake === null;
    const next = () => {
      if (id === REQUESTS) return resolve();
      id++;
      sentAt = performance.now();
      ws.send(request(id));
    };
    ws.onopen = () => ready && next();
    ws.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data)) as Record<string, unknown>;
      if (!ready) {
        if (handshake!(ws, m)) (ready = true), next();
        return;
      }
      if (!isAnswer(m, id)) return;
      lat.push(performance.now() - sentAt);
      next();
    };
    ws.onclose = (e) => reject(new Error(`${url} closed (${e.code} ${e.reason}) after ${lat.length} requests`));
  });
  ws.onclose = null;
  ws.close();
  return lat;
}

const openclawHandshake = (ws: WebSocket, m: Record<string, unknown>): boolean => {
  if (m.event === "connect.challenge") {
    ws.send(
      JSON.stringify({
        type: "req",
        id: "connect",
        method: "connect",
        params: {
          minProtocol: 4,
          maxProtocol: 4,
          client: { id: "cli", version: "1.0.0", platform: "linux", mode: "cli" },
          role: "operator",
          scopes: ["operator.read"],
          caps: [],
          commands: [],
          permissions: {},
          auth: { token: TOKEN },
        },
      }),
    );
    return false;
  }
  if (m.id === "connect") {
    if (m.ok !== true) throw new Error(`OpenClaw refused connect: ${JSON.stringify(m).slice(0, 300)}`);
    return true;
  }
  return false;
};

await runBench("peers/openclaw", async () => {
  await step("install node and openclaw into .cache/peers", 900_000, install);
  printHeader(
    "peers/openclaw",
    args,
    `openclaw@${OPENCLAW} on node@${NODE} vs exoclaw ${existsSync(binary) ? binary : "bun src/main.ts"}; ${TURNS} turns and ${REQUESTS} WebSocket requests per side per rep, idle RSS ${SETTLE_MS / 1000} s after the first health answer`,
  );
  const upstream = startUpstream();
  const up = upstream.port!;
  type Result = {
    startMs: number;
    idle: { kib: number; processes: number };
    ws: number[];
    turns: number[];
    firstTurn: number;
  };
  const measure =
    (start: () => Promise<Running>, model: string, auth: boolean, ws: (port: number) => Promise<number[]>) =>
    async (): Promise<Result> => {
      const g = await start();
      await Bun.sleep(SETTLE_MS);
      const idle = treeRss(g.pid);
      const firstTurn = await turn(g.port, model, auth);
      const turns: number[] = [];
      for (let i = 0; i < TURNS; i++) turns.push(await turn(g.port, model, auth));
      const lat = await ws(g.port);
      await g.stop();
      return { startMs: g.startMs, idle, ws: lat, turns, firstTurn };
    };
  const r = await step("both gateways, interleaved", 3_000_000, () =>
    interleave(reps, {
      exoclaw: measure(
        () => startExoclaw(up),
        "exoclaw:main",
        false,
        (port) =>
          wsLatency(
            `ws://127.0.0.1:${port}/ws`,
            null,
            (id) => `{"jsonrpc":"2.0","id":${id},"method":"ping"}`,
            (m, id) => m.id === id && m.result === "pong",
          ),
      ),
      openclaw: measure(
        () => startOpenclaw(up),
        "openclaw",
        true,
        (port) =>
          wsLatency(
            `ws://127.0.0.1:${port}/`,
            openclawHandshake,
            (id) => JSON.stringify({ type: "req", id: `r${id}`, method: "last-heartbeat", params: {} }),
            (m, id) => {
              if (m.id !== `r${id}`) return false;
              if (m.ok !== true) void fail(`OpenClaw answered last-heartbeat with ${JSON.stringify(m).slice(0, 300)}`);
              return true;
            },
          ),
      ),
    }),
  );
  /** Per-pair ratios OpenClaw / exoclaw of a per-rep figure, median (min–max). */
  const pr = (k: (x: Result) => number) => spread(summarize(pairRatios(r.openclaw.map(k), r.exoclaw.map(k))), ratio);
  const p50 = (xs: number[]) => summarize(xs).median;
  const p99 = (xs: number[]) => summarize(xs).p99;
  const side = (xs: Result[]) => ({
    start: summarize(xs.map((x) => x.startMs)),
    idle: summarize(xs.map((x) => x.idle.kib)),
    processes: summarize(xs.map((x) => x.idle.processes)),
    ws: summarize(xs.flatMap((x) => x.ws)),
    turn: summarize(xs.flatMap((x) => x.turns)),
    first: summarize(xs.map((x) => x.firstTurn)),
  });
  const e = side(r.exoclaw);
  const o = side(r.openclaw);
  const f = (n: number) => `${n.toFixed(0)} ms`;
  table(
    ["measure", "exoclaw", "OpenClaw", `OpenClaw / exoclaw: per-pair ratio, median (min–max) of ${reps}`],
    [
      [
        `cold start to the first 200 from /health, median (min–max) of ${reps}`,
        spread(e.start, f),
        spread(o.start, f),
        pr((x) => x.startMs),
      ],
      [
        `idle RSS of the process tree, ${SETTLE_MS / 1000} s after start, median (min–max)`,
        `${spread(e.idle, mib)} (${e.processes.median} processes)`,
        `${spread(o.idle, mib)} (${o.processes.median} processes)`,
        pr((x) => x.idle.kib),
      ],
      [
        `WebSocket request round trip (exoclaw ping / OpenClaw last-heartbeat), p50 / p99 of ${e.ws.n}`,
        `${ms(e.ws.median)} / ${ms(e.ws.p99)}`,
        `${ms(o.ws.median)} / ${ms(o.ws.p99)}`,
        `${pr((x) => p50(x.ws))} / ${pr((x) => p99(x.ws))}`,
      ],
      [
        "first chat turn after start (POST /v1/chat/completions), median (min–max)",
        spread(e.first, ms),
        spread(o.first, ms),
        pr((x) => x.firstTurn),
      ],
      [
        `chat turn, warm (POST /v1/chat/completions, same fake upstream), p50 / p99 of ${e.turn.n}`,
        `${ms(e.turn.median)} / ${ms(e.turn.p99)}`,
        `${ms(o.turn.median)} / ${ms(o.turn.p99)}`,
        `${pr((x) => p50(x.turns))} / ${pr((x) => p99(x.turns))}`,
      ],
    ],
  );
});
