/**
 * Chat benchmarks: the gateway's overhead per turn against a zero-latency fake upstream (speaking
 * OpenAI's streaming wire format), turns per second over many sockets, and a turn with a 3-round
 * tool loop through the sandbox (built-in echo plugin).
 *
 *   bun scripts/build-plugins.ts && bun bench/chat.ts [--turns 2000] [--seconds 5]
 *
 * The gateway runs as its own process (`bun src/main.ts gateway`); this process is the fake
 * upstream and the clients. Overhead = a turn through the gateway minus the same streamed call made
 * directly to the fake upstream, in the same run.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { turns: { type: "string", default: "2000" }, seconds: { type: "string", default: "5" } } });
const TURNS = Number(values.turns);
const SECONDS = Number(values.seconds);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

const chunk = (delta: unknown, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1, model: "bench", choices: [{ index: 0, delta, finish_reason: finish }], usage: null })}\n\n`;
const usage = `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1, model: "bench", choices: [], usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 } })}\n\n`;
const TEXT = chunk({ role: "assistant", content: "" }) + chunk({ content: "Hello" }) + chunk({ content: " from" }) + chunk({ content: " the bench." }) + chunk({}, "stop") + usage + "data: [DONE]\n\n";
const TOOL = (n: number) =>
  chunk({ role: "assistant", content: null, tool_calls: [{ index: 0, id: `call_${n}`, type: "function", function: { name: "echo", arguments: "" } }] }) +
  chunk({ tool_calls: [{ index: 0, function: { arguments: `{"text":"round ${n}"}` } }] }) +
  chunk({}, "tool_calls") +
  usage +
  "data: [DONE]\n\n";

const upstream = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const body = (await req.json()) as { messages: { role: string; content?: unknown }[] };
    const last = body.messages.at(-1);
    const rounds = body.messages.filter((m) => m.role === "tool").length;
    const wantsTools = body.messages.some((m) => m.role === "user" && String(m.content).startsWith("tools"));
    const text = wantsTools && rounds < 3 && (last?.role === "user" || last?.role === "tool") ? TOOL(rounds + 1) : TEXT;
    return new Response(text, { headers: { "content-type": "text/event-stream" } });
  },
});

const home = mkdtempSync(join(tmpdir(), "exoclaw-bench-chat-"));
writeFileSync(
  join(home, "config.toml"),
  `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "bench"\nbase_url = "http://127.0.0.1:${upstream.port}"\nmax_tool_rounds = 5\n\n[[plugins]]\nname = "echo"\npath = "builtin:echo"\n`,
);
const port = (() => {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
})();
const gateway = Bun.spawn([process.execPath, ...(process.env.BENCH_PROF ? ["--cpu-prof-md", "--cpu-prof-dir=/tmp/prof"] : []), join(import.meta.dir, "../src/main.ts"), "gateway", "--port", String(port)], {
  env: { EXOCLAW_HOME: home, OPENAI_API_KEY: "sk-bench", PATH: process.env.PATH ?? "" },
  stdout: "ignore",
  stderr: "inherit",
});

/** User + system CPU time of a process, from /proc (clock ticks of 10 ms on Linux). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function waitHealthy() {
  for (let i = 0; i < 500; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return;
    } catch {
      // starting
    }
    await Bun.sleep(20);
  }
  throw new Error("gateway did not start");
}

function open(): Promise<{ ws: WebSocket; send: (params: unknown) => Promise<{ stop_reason: string; text: string }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const pending = new Map<number, (r: { stop_reason: string; text: string }) => void>();
    let id = 0;
    ws.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data)) as { id?: number; result?: { stop_reason: string; text: string }; error?: unknown };
      if (m.id !== undefined) {
        if (m.error) throw new Error(JSON.stringify(m.error));
        pending.get(m.id)?.(m.result!);
        pending.delete(m.id);
      }
    };
    ws.onerror = () => reject(new Error("socket failed"));
    ws.onopen = () =>
      resolve({
        ws,
        send: (params) =>
          new Promise((r) => {
            const n = ++id;
            pending.set(n, r);
            ws.send(JSON.stringify({ jsonrpc: "2.0", id: n, method: "chat.send", params }));
          }),
      });
  });
}

/** The same streamed call, made directly: the baseline a turn's overhead is measured against. */
async function direct(): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${upstream.port}/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "bench", stream: true, messages: [{ role: "user", content: "hi" }] }),
  });
  await res.text();
}

try {
  await waitHealthy();
  const { ws, send } = await open();
  for (let i = 0; i < 200; i++) await send({ content: "warm up", peer: `warm${i % 10}` });
  for (let i = 0; i < 200; i++) await direct();

  const viaGateway: number[] = [];
  for (let i = 0; i < TURNS; i++) {
    const t0 = performance.now();
    const r = await send({ content: "hi", peer: `p${i % 50}` });
    viaGateway.push(performance.now() - t0);
    if (r.stop_reason !== "end_turn") throw new Error(`turn ended ${r.stop_reason}`);
  }
  const baseline: number[] = [];
  for (let i = 0; i < TURNS; i++) {
    const t0 = performance.now();
    await direct();
    baseline.push(performance.now() - t0);
  }

  const toolTurns: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    const r = await send({ content: "tools please", peer: `tool${i}` });
    toolTurns.push(performance.now() - t0);
    if (!r.text.endsWith("Hello from the bench.")) throw new Error(`tool turn gave ${JSON.stringify(r)}`);
  }
  ws.close();

  const sockets = await Promise.all(Array.from({ length: 50 }, () => open()));
  /** 50 sockets × 4 in flight for SECONDS; `peer` picks each turn's session. */
  async function load(peer: (socket: number, lane: number, n: number) => string) {
    const cpu0 = cpuMs(gateway.pid);
    let done = 0;
    const end = performance.now() + SECONDS * 1000;
    const t0 = performance.now();
    await Promise.all(
      sockets.flatMap((s, si) =>
        Array.from({ length: 4 }, async (_, k) => {
          for (let n = 0; performance.now() < end; n++) {
            await s.send({ content: "hi", peer: peer(si, k, n) });
            done++;
          }
        }),
      ),
    );
    return { rate: done / ((performance.now() - t0) / 1000), cpuPerTurn: (cpuMs(gateway.pid) - cpu0) / done };
  }
  const fresh = await load((si, k, n) => `fresh${si}-${k}-${n}`);
  const ongoing = await load((si, k) => `load${si}-${k}`);
  for (const s of sockets) s.ws.close();

  const f = (ms: number) => `${ms.toFixed(2)} ms`;
  console.log("| measure | figure |");
  console.log("|---|---|");
  console.log(`| turn through the gateway (chat.send → result), p50 / p99 | ${f(pct(viaGateway, 0.5))} / ${f(pct(viaGateway, 0.99))} |`);
  console.log(`| same streamed call made directly to the upstream, p50 / p99 | ${f(pct(baseline, 0.5))} / ${f(pct(baseline, 0.99))} |`);
  console.log(`| gateway overhead per turn, p50 / p99 | ${f(pct(viaGateway, 0.5) - pct(baseline, 0.5))} / ${f(pct(viaGateway, 0.99) - pct(baseline, 0.99))} |`);
  for (const [name, r] of [["a new session each turn", fresh], ["200 ongoing sessions (history grows to the window)", ongoing]] as const) {
    console.log(`| turns/s, 50 sockets × 4 in flight, ${SECONDS} s, ${name} | ${Math.round(r.rate).toLocaleString("en")} (gateway CPU ${(r.cpuPerTurn * 1000).toFixed(0)} µs/turn → ${Math.round(1000 / r.cpuPerTurn).toLocaleString("en")}/s per core) |`);
  }
  console.log(`| one turn with a 3-round tool loop (echo in the sandbox), p50 / p99 | ${f(pct(toolTurns, 0.5))} / ${f(pct(toolTurns, 0.99))} |`);
} finally {
  gateway.kill("SIGTERM");
  await gateway.exited;
  await upstream.stop(true);
  rmSync(home, { recursive: true, force: true });
}
