/**
 * Gateway benchmarks: cold start of the compiled binary to the first 200 from /health, idle RSS,
 * and ping round trips per second over one socket and over 100 sockets.
 *
 *   bun bench/gateway.ts [--binary dist/exoclaw-linux-x64] [--runs 15] [--seconds 3]
 *
 * The gateway runs as its own process (the compiled binary, or `bun src/main.ts` for comparison);
 * this process is the client. Everything stays on loopback and stops by itself.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    binary: { type: "string", default: join(import.meta.dir, "../dist/exoclaw-linux-x64") },
    runs: { type: "string", default: "15" },
    seconds: { type: "string", default: "3" },
  },
});
const RUNS = Number(values.runs);
const SECONDS = Number(values.seconds);

function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

interface Running {
  proc: Bun.Subprocess;
  port: number;
  home: string;
  startMs: number;
}

async function startAndWait(cmd: string[], args?: (port: number) => string[]): Promise<Running> {
  const port = freePort();
  const home = mkdtempSync(join(tmpdir(), "exoclaw-bench-"));
  const t0 = performance.now();
  const proc = Bun.spawn([...cmd, ...(args ? args(port) : ["gateway", "--port", String(port)])], { env: { EXOCLAW_HOME: home, PATH: process.env.PATH ?? "" }, stdout: "ignore", stderr: "ignore" });
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() - t0 > 10_000) throw new Error(`${cmd.join(" ")} did not answer /health within 10 s`);
    await Bun.sleep(1);
  }
  return { proc, port, home, startMs: performance.now() - t0 };
}

async function stop(r: Running): Promise<void> {
  r.proc.kill("SIGTERM");
  await r.proc.exited;
  rmSync(r.home, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function coldStart(cmd: string[]): Promise<{ median: number; min: number; max: number }> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await startAndWait(cmd);
    times.push(r.startMs);
    await stop(r);
  }
  return { median: median(times), min: Math.min(...times), max: Math.max(...times) };
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function openSockets(port: number, n: number): Promise<WebSocket[]> {
  return Promise.all(
    Array.from({ length: n }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error("socket failed"));
    })),
  );
}

/** Each socket keeps `depth` pings in flight for SECONDS; returns round trips/s and latency percentiles. */
async function pingLoad(port: number, sockets: number, depth: number) {
  const socks = await openSockets(port, sockets);
  const lat: number[] = [];
  let done = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    socks.map((ws) => new Promise<void>((resolve) => {
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
        const rid = JSON.parse(ev.data as string).id as number;
        lat.push(performance.now() - sentAt.get(rid)!);
        sentAt.delete(rid);
        outstanding--;
        done++;
        if (performance.now() < end) send();
        else if (outstanding === 0) resolve();
      };
      for (let i = 0; i < depth; i++) send();
    })),
  );
  const elapsed = (performance.now() - t0) / 1000;
  for (const ws of socks) ws.close();
  return { rps: Math.round(done / elapsed), p50: median(lat), p99: pct(lat, 0.99) };
}

const fmt = (n: number) => n.toFixed(1);

async function main() {
  const binary = values.binary;
  if (!existsSync(binary)) {
    console.error(`no binary at ${binary}: run \`bun run build --native\` first, or pass --binary`);
    process.exit(1);
  }
  const source = [process.execPath, join(import.meta.dir, "../src/main.ts")];
  console.log(`exoclaw gateway bench — ${RUNS} cold starts each, ${SECONDS} s per load run, ${navigator.hardwareConcurrency} cores`);

  const compiled = await coldStart([binary]);
  const fromSource = await coldStart(source);
  console.log(`cold start to first /health 200, compiled binary: median ${fmt(compiled.median)} ms (min ${fmt(compiled.min)}, max ${fmt(compiled.max)})`);
  console.log(`cold start to first /health 200, bun src/main.ts:   median ${fmt(fromSource.median)} ms (ratio ${(fromSource.median / compiled.median).toFixed(2)}x)`);

  const bare = await startAndWait([process.execPath, join(import.meta.dir, "_bare-ws.ts")], (port) => [String(port)]);
  const r = await startAndWait([binary]);
  try {
    await Bun.sleep(1000);
    console.log(`idle RSS after start (compiled): ${fmt(rssMiB(r.proc.pid))} MiB (bare Bun.serve baseline: ${fmt(rssMiB(bare.proc.pid))} MiB)`);
    for (const [sockets, depth] of [[1, 1], [1, 32], [100, 1], [100, 8]] as const) {
      const res = await pingLoad(r.port, sockets, depth);
      const base = await pingLoad(bare.port, sockets, depth);
      console.log(
        `ping over ${sockets} socket(s), ${depth} in flight each: ${res.rps.toLocaleString("en")} round trips/s, p50 ${res.p50.toFixed(3)} ms, p99 ${res.p99.toFixed(3)} ms` +
          ` — bare Bun ${base.rps.toLocaleString("en")}/s (exoclaw/bare ${(res.rps / base.rps).toFixed(2)})`,
      );
    }
    await Bun.sleep(500);
    console.log(`RSS after load: ${fmt(rssMiB(r.proc.pid))} MiB`);
  } finally {
    await stop(r);
    await stop(bare);
  }
}

await main();
