/**
 * A gateway under test and what it talks to: a zero-latency fake upstream speaking OpenAI's
 * streaming Chat Completions format (in the bench process), a gateway process configured against it,
 * and a JSON-RPC client for /ws whose turns fail loudly on anything but `end_turn`.
 *
 * What the fake upstream answers, by the last user message:
 * - `tools …`: three rounds of `echo` tool calls, then text (in every turn of a session: the rounds
 *   are counted after the last user message);
 * - `tool:<name>`: one round calling that tool (echo, remember, http_get), then text;
 * - anything else: text at once ("Hello from the bench.").
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, onCleanup, ROOT, stopProcess, waitHealthy } from "./_lib.ts";

export const REPLY = "Hello from the bench.";

const chunk = (delta: unknown, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1, model: "bench", choices: [{ index: 0, delta, finish_reason: finish }], usage: null })}\n\n`;
const USAGE = `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1, model: "bench", choices: [], usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 } })}\n\n`;
const TEXT =
  chunk({ role: "assistant", content: "" }) +
  chunk({ content: "Hello" }) +
  chunk({ content: " from" }) +
  chunk({ content: " the bench." }) +
  chunk({}, "stop") +
  USAGE +
  "data: [DONE]\n\n";
const TOOL_ARGS: Record<string, (n: number) => unknown> = {
  echo: (n) => ({ text: `round ${n}` }),
  remember: (n) => ({ topic: "bench", text: `note ${n % 8}` }),
  http_get: () => ({ url: "http://127.0.0.1:9/not-granted" }),
};
const toolCall = (name: string, n: number) =>
  chunk({
    role: "assistant",
    content: null,
    tool_calls: [{ index: 0, id: `call_${n}`, type: "function", function: { name, arguments: "" } }],
  }) +
  chunk({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify(TOOL_ARGS[name]!(n)) } }] }) +
  chunk({}, "tool_calls") +
  USAGE +
  "data: [DONE]\n\n";

/** Model calls the fake upstream answered in this process (a soak checks its tool loops ran). */
export const upstreamCalls = { total: 0, toolCalls: 0 };

/** The fake upstream; stopped by the bench's cleanup. */
export function startUpstream(): Bun.Server<undefined> {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      upstreamCalls.total++;
      const body = (await req.json()) as { messages: { role: string; content?: unknown }[] };
      const last = body.messages.at(-1);
      // Tool rounds of this turn only: the results after the last user message, not the history's.
      const rounds = body.messages
        .slice(body.messages.findLastIndex((m) => m.role === "user"))
        .filter((m) => m.role === "tool").length;
      const user = String(body.messages.findLast((m) => m.role === "user")?.content ?? "");
      const named = /^tool:(\w+)/.exec(user)?.[1];
      const wanted =
        named !== undefined && named in TOOL_ARGS
          ? { name: named, rounds: 1 }
          : user.startsWith("tools")
            ? { name: "echo", rounds: 3 }
            : null;
      const calling = wanted !== null && rounds < wanted.rounds && (last?.role === "user" || last?.role === "tool");
      if (calling) upstreamCalls.toolCalls++;
      const text = calling ? toolCall(wanted.name, rounds + 1) : TEXT;
      return new Response(text, { headers: { "content-type": "text/event-stream" } });
    },
  });
  onCleanup(() => server.stop(true));
  return server;
}

/** The same streamed call a turn makes, sent directly to the upstream: the floor of a turn. */
export async function directCall(upstreamPort: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${upstreamPort}/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "bench", stream: true, messages: [{ role: "user", content: "hi" }] }),
  });
  const text = await res.text();
  if (!text.includes("[DONE]")) throw new Error(`the upstream answered ${res.status} without [DONE]`);
}

/** Config text: an OpenAI agent on the fake upstream, the built-in tool plugins, the http channel. */
export function gatewayConfig(upstreamPort: number): string {
  return [
    `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "bench"\nbase_url = "http://127.0.0.1:${upstreamPort}"\nmax_tool_rounds = 5\n`,
    `[[plugins]]\nname = "echo"\npath = "builtin:echo"\n`,
    `[[plugins]]\nname = "notes"\npath = "builtin:notes"\n`,
    `[[plugins]]\nname = "http-get"\npath = "builtin:http-get"\n`,
    `[channels.http]\n`,
  ].join("\n");
}

export interface GatewayProcess {
  proc: Bun.Subprocess;
  port: number;
  home: string;
  /** ms from spawn to the first 200 from /health */
  startMs: number;
  /** The last 4,000 characters the gateway wrote to stderr. */
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Starts `cmd gateway --port N` (or `cmd …args(port)`) with a fresh EXOCLAW_HOME holding `config`,
 * and waits for /health. `stop` (also run by the bench's cleanup) ends it and removes its home.
 */
export async function startGateway(
  cmd: readonly string[],
  opts: {
    config?: string;
    args?: (port: number) => string[];
    env?: Record<string, string>;
    /** Runs on the fresh home before the gateway starts (credentials, files). */
    prepare?: (home: string) => void;
  } = {},
): Promise<GatewayProcess> {
  const port = freePort();
  const home = mkdtempSync(join(tmpdir(), "exoclaw-bench-"));
  if (opts.config !== undefined) writeFileSync(join(home, "config.toml"), opts.config);
  opts.prepare?.(home);
  const t0 = performance.now();
  const proc = Bun.spawn([...cmd, ...(opts.args ? opts.args(port) : ["gateway", "--port", String(port)])], {
    cwd: home,
    env: { EXOCLAW_HOME: home, OPENAI_API_KEY: "sk-bench", PATH: process.env.PATH ?? "", ...opts.env },
    stdout: "ignore",
    stderr: "pipe",
  });
  let stderr = "";
  void (async () => {
    for await (const c of proc.stderr) stderr = (stderr + new TextDecoder().decode(c)).slice(-4000);
  })();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopProcess(proc);
    rmSync(home, { recursive: true, force: true });
  };
  onCleanup(stop);
  try {
    await waitHealthy(`http://127.0.0.1:${port}/health`, proc);
  } catch (e) {
    await stop();
    throw new Error(
      `${cmd.join(" ")}: ${e instanceof Error ? e.message : String(e)}${stderr.trim() ? `; its stderr: ${stderr.trim().split("\n").slice(-3).join(" / ")}` : ""}`,
    );
  }
  return { proc, port, home, startMs: performance.now() - t0, stderr: () => stderr, stop };
}

/** `bun src/main.ts`, this process's own Bun. */
export const FROM_SOURCE = [process.execPath, join(ROOT, "src/main.ts")] as const;

export interface TurnResult {
  stop_reason: string;
  text: string;
}

export interface Client {
  ws: WebSocket;
  /** One chat.send; rejects on a JSON-RPC error and on any stop_reason but end_turn (naming it). */
  turn(params: Record<string, unknown>): Promise<TurnResult>;
  close(): void;
}

export function openClient(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const pending = new Map<number, { resolve: (r: TurnResult) => void; reject: (e: Error) => void }>();
    let id = 0;
    ws.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data)) as { id?: number; result?: TurnResult; error?: unknown };
      if (m.id === undefined) return;
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (!p) return;
      if (m.error !== undefined) p.reject(new Error(`chat.send answered an error: ${JSON.stringify(m.error)}`));
      else if (m.result?.stop_reason !== "end_turn")
        p.reject(
          new Error(
            `a turn ended with stop_reason ${JSON.stringify(m.result?.stop_reason)}, not end_turn (text ${JSON.stringify(m.result?.text?.slice(0, 200))})`,
          ),
        );
      else p.resolve(m.result);
    };
    ws.onclose = () => {
      for (const p of pending.values()) p.reject(new Error("the gateway closed the socket with a turn in flight"));
      pending.clear();
    };
    ws.onerror = () => reject(new Error("the WebSocket to the gateway failed to open"));
    ws.onopen = () =>
      resolve({
        ws,
        turn: (params) =>
          new Promise((res, rej) => {
            const n = ++id;
            pending.set(n, { resolve: res, reject: rej });
            ws.send(JSON.stringify({ jsonrpc: "2.0", id: n, method: "chat.send", params }));
          }),
        close: () => ws.close(),
      });
  });
}

/** One message to the http channel; throws unless it was answered with one end_turn reply. */
export async function webhookTurn(port: number, body: { peer: string; text: string; id: string }): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/webhook/http`, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST /webhook/http answered ${res.status}: ${text.slice(0, 200)}`);
  const got = JSON.parse(text) as { replies?: { stop_reason?: string; text?: string }[] };
  const r = got.replies?.[0];
  if (r?.stop_reason !== "end_turn")
    throw new Error(
      `a webhook turn ended with stop_reason ${JSON.stringify(r?.stop_reason)}, not end_turn: ${text.slice(0, 200)}`,
    );
}
