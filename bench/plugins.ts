/**
 * Plugin host benchmarks: a warm tool call through the process boundary (p50, p99) against an
 * in-process Extism call of the same plugin, instantiation from a cached compiled module, calls
 * per second across 2 cores, and how fast a killed runaway is replaced.
 *
 *   bun scripts/build-plugins.ts && bun bench/plugins.ts
 */
import createPlugin from "@extism/extism";
import { join } from "node:path";
import { silentLogger } from "../src/lib/log.ts";
import { PluginHost, pluginHostCommand } from "../src/sandbox/index.ts";

const ROOT = join(import.meta.dir, "..");
const wasm = new Uint8Array(await Bun.file(join(ROOT, "dist/plugins/echo.wasm")).arrayBuffer());
const hostile = new Uint8Array(await Bun.file(join(ROOT, "dist/fixtures/hostile.wasm")).arrayBuffer());
const grant = (name: string, timeout_ms = 5000) => ({ name, allowed_hosts: [], allowed_paths: {}, secrets: [], memory_mb: 16, timeout_ms, config: {} });
const input = { text: "hello" };
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;
const shims = { env: { seed: () => Date.now(), "Date.now": () => Date.now(), "console.log": () => {}, abort: () => {} } };
const userFns = { "extism:host/user": { exo_log() {}, exo_now: () => Date.now(), exo_kv_get: () => 0n, exo_kv_set() {}, exo_http: () => 0n, exo_fs_read: () => 0n, exo_fs_write: () => 0n } };

function newHost(maxProcesses: number) {
  return new PluginHost({ command: pluginHostCommand(), kv: { get: async () => null, set: async () => {}, stats: async () => ({ entries: 0, bytes: 0 }) }, secret: () => null, log: silentLogger, maxProcesses });
}

// 1. Warm call round trip: through the child process vs in-process Extism.
const host = newHost(1);
await host.load(grant("echo"), wasm);
for (let i = 0; i < 500; i++) await host.callTool("echo", "echo", input);
const through: number[] = [];
for (let i = 0; i < 5000; i++) {
  const t0 = performance.now();
  await host.callTool("echo", "echo", input);
  through.push(performance.now() - t0);
}
await host.stop();

const module = await WebAssembly.compile(wasm);
const inproc = await createPlugin({ wasm: [{ module }] } as never, { useWasi: false, functions: { ...userFns, ...shims } } as never);
const payload = JSON.stringify({ tool: "echo", input });
for (let i = 0; i < 500; i++) await inproc.call("call", payload);
const direct: number[] = [];
for (let i = 0; i < 5000; i++) {
  const t0 = performance.now();
  await inproc.call("call", payload);
  direct.push(performance.now() - t0);
}

// 2. Instantiation from a cached compiled module (what a replaced instance costs).
const inst: number[] = [];
for (let i = 0; i < 200; i++) {
  const t0 = performance.now();
  const p = await createPlugin({ wasm: [{ module }] } as never, { useWasi: false, functions: { ...userFns, ...shims } } as never);
  inst.push(performance.now() - t0);
  await p.close();
}

// 3. Throughput over 2 processes, 8 callers.
const pool = newHost(2);
await pool.load(grant("echo"), wasm);
await Promise.all([pool.callTool("echo", "echo", input), pool.callTool("echo", "echo", input)]);
let calls = 0;
const end = performance.now() + 3000;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (performance.now() < end) {
      await pool.callTool("echo", "echo", input);
      calls++;
    }
  }),
);
const rate = calls / ((performance.now() - t0) / 1000);
await pool.stop();

// 4. A runaway killed at its deadline: time from the timeout error to the next answered call.
const one = newHost(1);
await one.load(grant("echo"), wasm);
await one.load(grant("hostile", 200), hostile);
const recover: number[] = [];
for (let i = 0; i < 5; i++) {
  await one.callTool("hostile", "spin", {}).catch(() => {});
  const t1 = performance.now();
  await one.callTool("echo", "echo", input);
  recover.push(performance.now() - t1);
}
await one.stop();

console.log("| measure | figure |");
console.log("|---|---|");
console.log(`| warm tool call through the child process, p50 / p99 | ${us(pct(through, 0.5))} / ${us(pct(through, 0.99))} |`);
console.log(`| same call in-process (Extism, no isolation), p50 / p99 | ${us(pct(direct, 0.5))} / ${us(pct(direct, 0.99))} |`);
console.log(`| process boundary overhead (p50 ratio) | ${(pct(through, 0.5) / pct(direct, 0.5)).toFixed(1)}x |`);
console.log(`| instantiation from a cached compiled module, median | ${us(pct(inst, 0.5))} |`);
console.log(`| calls/s, 2 plugin processes, 8 callers | ${Math.round(rate).toLocaleString("en")} |`);
console.log(`| runaway killed → next call answered, median of 5 | ${pct(recover, 0.5).toFixed(0)} ms |`);
