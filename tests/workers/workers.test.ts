/**
 * `exoclaw gateway --workers 2` (issue 13), through the compiled binary: more sockets than one
 * process may open, each answering `ping`; turns of one session from many sockets run one at a time
 * and in order whichever worker got them; a daily budget holds across workers; a killed worker is
 * replaced while /health keeps answering; SIGTERM lets a running turn finish and be stored, exit 0;
 * and `--workers 1` is the single process it always was.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { sse } from "../helpers/fake-upstream.ts";
import { type BinaryGateway, binaryHome, NATIVE, nativeBinary, startBinaryGateway, until } from "../helpers/binary.ts";
import { openSocket, type TestSocket } from "../helpers/ws.ts";

const TOKEN = "workers-test-token";
const ROOT = join(import.meta.dir, "../..");

interface ModelCall {
  /** The request's messages (role and text). */
  messages: { role: string; text: string }[];
}

/**
 * A fake Anthropic upstream that counts the calls in flight (the most it ever saw at once), answers
 * each after `holdMs` (its latency) with "re: <last user text>" and the given usage.
 */
function countingModel(opts: { holdMs: number; usage?: { input_tokens: number; output_tokens: number } }) {
  const calls: ModelCall[] = [];
  let inFlight = 0;
  let most = 0;
  const usage = opts.usage ?? { input_tokens: 5, output_tokens: 3 };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as {
        messages: { role: string; content: string | { type: string; text?: string }[] }[];
      };
      const messages = body.messages.map((m) => ({
        role: m.role,
        text: typeof m.content === "string" ? m.content : m.content.map((p) => p.text ?? "").join(""),
      }));
      calls.push({ messages });
      inFlight++;
      most = Math.max(most, inFlight);
      const text = `re: ${messages.filter((m) => m.role === "user").at(-1)?.text ?? ""}`;
      const answer = sse(
        [
          {
            type: "message_start",
            message: {
              id: "m",
              type: "message",
              role: "assistant",
              model: "claude",
              content: [],
              stop_reason: null,
              usage: { input_tokens: usage.input_tokens, output_tokens: 1 },
            },
          },
          { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
          { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } },
          { type: "content_block_stop", index: 0 },
          { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: usage.output_tokens } },
          { type: "message_stop" },
        ],
        { named: true },
      );
      await new Promise((r) => setTimeout(r, opts.holdMs));
      inFlight--;
      return new Response(answer, { headers: { "content-type": "text/event-stream" } });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    calls,
    get most() {
      return most;
    },
    stop: () => server.stop(true),
  };
}

const agentConfig = (url: string, extra = "") =>
  `[memory]\nepisodic_turns = 30\n\n[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "${url}"\n${extra}`;

/** Starts `gateway --workers 2` and waits until both workers listen. */
async function startWorkers(home: ReturnType<typeof binaryHome>, args: string[] = []): Promise<BinaryGateway> {
  const gw = await startBinaryGateway(home, { args: ["--workers", "2", ...args], env: { EXOCLAW_TOKEN: TOKEN } });
  await gw.waitForLog((l) => l.msg === "workers ready");
  await until("both workers in status", async () => ((await status(gw)).workers.running === 2 ? true : undefined));
  return gw;
}

type WorkersStatus = {
  expected: number;
  running: number;
  list: { index: number; pid: number; connections: number }[];
  total: { connections: number };
};

async function status(gw: BinaryGateway): Promise<{ workers: WorkersStatus }> {
  await using s = await openSocket(`ws://127.0.0.1:${gw.port}/ws`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const r = await s.call("status");
  return r.result as { workers: WorkersStatus };
}

/** Waits until every worker reports sockets (the kernel spreads them; reports are at most a second old). */
const bothCarry = (gw: BinaryGateway) =>
  until("sockets on both workers", async () =>
    (await status(gw)).workers.list.every((w) => w.connections > 0) ? true : undefined,
  );

const socket = (gw: BinaryGateway) =>
  openSocket(`ws://127.0.0.1:${gw.port}/ws`, { headers: { authorization: `Bearer ${TOKEN}` } });

describe.if(NATIVE !== undefined)("gateway --workers 2", () => {
  beforeAll(async () => {
    await nativeBinary();
  }, 180_000);

  test("26,000 sockets from two client processes — more than one process may open — each answer ping; status counts them on both workers", async () => {
    using home = binaryHome();
    await using gw = await startWorkers(home);
    const swarm = (from: string) =>
      Bun.spawn(
        [
          process.execPath,
          join(ROOT, "bench/_swarm.ts"),
          "--port",
          String(gw.port),
          "--count",
          "13000",
          "--from",
          from,
          "--token",
          TOKEN,
        ],
        {
          stdin: "pipe",
          stdout: "pipe",
          stderr: "inherit",
        },
      );
    const clients = [swarm("127.0.0.2"), swarm("127.0.0.3")];
    try {
      const readers = clients.map((c) => c.stdout.getReader());
      const decoder = new TextDecoder();
      const bufs = ["", ""];
      const nextLine = async (i: number): Promise<Record<string, unknown>> => {
        for (;;) {
          const nl = bufs[i]!.indexOf("\n");
          if (nl !== -1) {
            const line = bufs[i]!.slice(0, nl);
            bufs[i] = bufs[i]!.slice(nl + 1);
            return JSON.parse(line) as Record<string, unknown>;
          }
          const { value, done } = await readers[i]!.read();
          if (done) throw new Error(`client ${i} ended early`);
          bufs[i] += decoder.decode(value, { stream: true });
        }
      };
      const opened = await Promise.all([nextLine(0), nextLine(1)]);
      // Every socket opened, authenticated (Bearer) and answered its ping with pong.
      for (const o of opened) expect(o).toMatchObject({ t: "open", open: 13000, failed: 0 });
      // Both workers carry them (neither could hold 26,000 alone under 20,000 open files).
      const s = await until("both workers' reports to count every socket", async () => {
        const st = (await status(gw)).workers;
        return st.total.connections >= 26_000 ? st : undefined;
      });
      expect(s).toMatchObject({ expected: 2, running: 2 });
      for (const w of s.list) expect(w.connections).toBeGreaterThan(6_000);
      // Still answering while all are open.
      for (const c of clients) c.stdin.write("sample 50\n");
      for (const i of [0, 1]) {
        const sample = await nextLine(i);
        expect((sample.ms as number[]).filter((ms) => ms < 0)).toEqual([]);
      }
      for (const c of clients) c.stdin.write("close\n");
      for (const c of clients) c.stdin.end();
      expect(await Promise.all(clients.map((c) => c.exited))).toEqual([0, 0]);
      await until(
        "the sockets to be gone from the workers",
        async () => ((await status(gw)).workers.total.connections <= 1 ? true : undefined),
        20_000,
      );
    } finally {
      for (const c of clients) c.kill("SIGKILL");
    }
  }, 120_000);

  describe("turns", () => {
    const model = countingModel({ holdMs: 30 });
    const home = binaryHome();
    let gw: BinaryGateway;
    beforeAll(async () => {
      home.file("config.toml", agentConfig(model.url));
      gw = await startWorkers(home);
    }, 60_000);
    afterAll(async () => {
      await gw?.stop();
      model.stop();
      home[Symbol.dispose]();
    });

    test("24 turns sent at once to one session from 24 sockets run one at a time, in order, whichever worker got them", async () => {
      const sockets: TestSocket[] = await Promise.all(Array.from({ length: 24 }, () => socket(gw)));
      try {
        // The kernel spread the sockets over both workers.
        await bothCarry(gw);
        const results = await Promise.all(
          sockets.map((s, i) => s.call("chat.send", { content: `m${i}`, peer: "one-session" })),
        );
        for (const r of results) expect(r.result).toMatchObject({ stop_reason: "end_turn" });
        expect(model.calls).toHaveLength(24);
        // Never two calls of the session at once.
        expect(model.most).toBe(1);
        // Call k saw the whole history before it: k earlier turns, alternating user/assistant, each
        // assistant message the answer to the user message before it — whichever worker ran it.
        model.calls.forEach((call, k) => {
          expect(call.messages).toHaveLength(2 * k + 1);
          call.messages.forEach((m, j) => expect(m.role).toBe(j % 2 === 0 ? "user" : "assistant"));
          for (let j = 1; j < call.messages.length; j += 2)
            expect(call.messages[j]!.text).toBe(`re: ${call.messages[j - 1]!.text}`);
          if (k > 0) expect(call.messages.slice(0, 2 * k - 1)).toEqual(model.calls[k - 1]!.messages);
        });
        // Every turn's user message is in the history exactly once.
        expect(new Set(model.calls.map((c) => c.messages.at(-1)!.text)).size).toBe(24);
      } finally {
        for (const s of sockets) s.ws.close();
      }
    }, 60_000);
  });

  test("20 turns at once against a 5,000-token daily budget at 1,000 tokens a call make at most 5 model calls across both workers", async () => {
    // Each call is estimated at ~900 tokens (max_tokens) and settles at 1,000 (the model's counts).
    const model = countingModel({ holdMs: 50, usage: { input_tokens: 200, output_tokens: 800 } });
    using home = binaryHome();
    home.file("config.toml", agentConfig(model.url, "max_tokens = 900\n\n[budgets]\ndaily_tokens = 5000\n"));
    await using gw = await startWorkers(home);
    const sockets = await Promise.all(Array.from({ length: 20 }, () => socket(gw)));
    try {
      await bothCarry(gw);
      const results = await Promise.all(
        sockets.map((s, i) => s.call("chat.send", { content: `spend ${i}`, peer: `p${i}` })),
      );
      const stops = results.map((r) => (r.result as { stop_reason: string }).stop_reason);
      expect(model.calls.length).toBeLessThanOrEqual(5);
      expect(model.calls.length).toBeGreaterThan(0);
      expect(stops.filter((s) => s === "end_turn")).toHaveLength(model.calls.length);
      expect(stops.filter((s) => s === "budget")).toHaveLength(20 - model.calls.length);
    } finally {
      for (const s of sockets) s.ws.close();
      model.stop();
    }
  }, 60_000);

  test("a worker killed with SIGKILL is replaced (logged, new pid) and /health keeps answering", async () => {
    using home = binaryHome();
    await using gw = await startWorkers(home);
    const before = (await status(gw)).workers.list;
    expect(before).toHaveLength(2);
    const victim = before[1]!;
    process.kill(victim.pid, "SIGKILL");
    const exited = await gw.waitForLog((l) => l.msg === "worker exited; restarting it");
    expect(exited).toMatchObject({ worker: victim.index, pid: victim.pid, signal: "SIGKILL" });
    // While it is down and after: every fresh connection is answered by the worker still up.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${gw.url}/health`, { headers: { connection: "close" } });
      expect(res.status).toBe(200);
    }
    const after = await until("the replacement in status", async () => {
      const st = (await status(gw)).workers;
      const w = st.list.find((x) => x.index === victim.index);
      return st.running === 2 && w && w.pid !== victim.pid ? st : undefined;
    });
    expect(after.list.map((w) => w.pid)).toContain(before[0]!.pid);
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  }, 60_000);

  test("/ready lists the workers; a worker whose supervisor was killed drains and exits (no orphans)", async () => {
    using home = binaryHome();
    await using gw = await startWorkers(home);
    const ready = await fetch(`${gw.url}/ready`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { workers: WorkersStatus };
    expect(body.workers).toMatchObject({ expected: 2, running: 2 });
    const pids = body.workers.list.map((w) => w.pid);
    gw.proc.kill("SIGKILL");
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await until(
      "both workers to exit after their supervisor died",
      () => (pids.every((p) => !alive(p)) ? true : undefined),
      20_000,
    );
  }, 60_000);

  test("SIGTERM with a turn running: the turn completes and is stored, then exit 0", async () => {
    const model = countingModel({ holdMs: 1500 });
    using home = binaryHome();
    home.file("config.toml", agentConfig(model.url, "\n[channels.http]\n"));
    const gw = await startWorkers(home);
    try {
      const answer = fetch(`${gw.url}/webhook/http`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ peer: "drain", text: "finish me" }),
      });
      await until("the turn's model call", () => (model.calls.length > 0 ? true : undefined));
      gw.kill("SIGTERM");
      const res = await answer;
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        replies: [{ peer: "drain", text: "re: finish me", stop_reason: "end_turn" }],
      });
      expect(await gw.stop(30_000)).toBe(0);
      expect(gw.logs.some((l) => l.msg === "shutting down" && l.module === "supervisor")).toBe(true);
      expect(gw.logs.some((l) => l.msg === "workers stopped")).toBe(true);
      expect(gw.logs.filter((l) => l.msg === "worker exited; restarting it")).toEqual([]);
      const db = new Database(join(home.path, "exoclaw.db"), { readonly: true });
      const rows = db.query("SELECT role, content FROM messages ORDER BY seq").all() as {
        role: string;
        content: string;
      }[];
      db.close();
      expect(rows.map((r) => r.role)).toEqual(["user", "assistant"]);
      expect(rows[1]!.content).toContain("re: finish me");
      expect(gw.stderr()).toBe("");
    } finally {
      model.stop();
    }
  }, 60_000);

  test("--workers 1 is the single process: no supervisor, no workers in status; a bad --workers is refused", async () => {
    using home = binaryHome();
    {
      await using gw = await startBinaryGateway(home, { args: ["--workers", "1"], env: { EXOCLAW_TOKEN: TOKEN } });
      expect(gw.logs.some((l) => l.msg === "starting workers")).toBe(false);
      const st = (await status(gw)) as { workers?: unknown; pid: number };
      expect(st.workers).toBeUndefined();
      expect(st.pid).toBe(gw.proc.pid);
    }
    await expect(startBinaryGateway(home, { args: ["--workers", "0"] })).rejects.toThrow(
      /--workers: expected a number from 1 to 256 or "auto"/,
    );
  }, 60_000);
});
