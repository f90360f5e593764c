/**
 * Attacks on metering through the real runner: real providers over HTTP against loopback fakes,
 * real SQLite in a temp dir, budgets from a real config file. Each test is the attack that used to
 * get model calls served without being paid for or counted.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { providerStream } from "../../src/agent/provider-factory.ts";
import { AgentRunner, type TurnRequest } from "../../src/agent/runner.ts";
import type { ToolSpec } from "../../src/agent/types.ts";
import { type ConfigFile, LiveConfig, loadConfig } from "../../src/config/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { openSqliteStore, type Store } from "../../src/store/index.ts";
import { type FakeUpstream, ndjson, type Reply, sse, startFakeUpstream } from "../helpers/fake-upstream.ts";
import { type TempDir, tempDir } from "../helpers/temp.ts";

const fixture = (path: string): string => readFileSync(join(import.meta.dir, "../fixtures/providers", path), "utf8");

/** An OpenAI stream of `text` reporting the given usage. */
const openaiText = (text: string, usage: { prompt_tokens: number; completion_tokens: number }): Reply => ({
  headers: { "content-type": "text/event-stream" },
  body: sse([
    { choices: [{ index: 0, delta: { role: "assistant", content: text }, finish_reason: null }] },
    { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
    { choices: [], usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } },
    "[DONE]",
  ]),
});

interface Rig {
  home: TempDir;
  store: Store;
  config: ConfigFile;
  runner: AgentRunner;
  turn(
    n: number | string,
    over?: Partial<TurnRequest>,
    opts?: { signal?: AbortSignal; onText?: (t: string) => void },
  ): ReturnType<AgentRunner["run"]>;
  [Symbol.asyncDispose](): Promise<void>;
}

function rig(
  toml: string,
  opts: {
    env?: Record<string, string>;
    fetch?: typeof fetch;
    store?: (s: Store) => Store;
    maxPageCount?: number;
    tools?: ToolSpec[];
  } = {},
): Rig {
  const home = tempDir();
  home.file("config.toml", toml);
  const config = loadConfig({ EXOCLAW_HOME: home.path });
  const real = openSqliteStore(
    join(home.path, "exoclaw.db"),
    opts.maxPageCount !== undefined ? { maxPageCount: opts.maxPageCount } : {},
  );
  const store = opts.store ? opts.store(real) : real;
  const runner = new AgentRunner({
    store,
    live: new LiveConfig(config),
    memory: { soul: () => "", historyLimit: () => 50, recall: async () => "" },
    streamFor: (agent) =>
      providerStream(agent, {
        home: home.path,
        env: opts.env ?? {},
        log: silentLogger,
        retry: { sleep: async () => {} },
        ...(opts.fetch && { fetch: opts.fetch }),
      }),
    toolsFor: () => ({ specs: () => opts.tools ?? [], run: async () => ({ content: "no tools", is_error: true }) }),
    log: silentLogger,
  });
  return {
    home,
    store,
    config,
    runner,
    turn: (n, over = {}, o = {}) =>
      runner.run(
        {
          agent: "main",
          address: {
            key: `main:ws:local:p${n}`,
            agent: "main",
            channel: "ws",
            account: "local",
            peer: `p${n}`,
            thread: null,
          },
          content: `hello ${n}`,
          ...over,
        },
        { signal: o.signal ?? new AbortController().signal, emit: (e) => e.event === "text" && o.onText?.(e.data) },
      ),
    async [Symbol.asyncDispose]() {
      await real.close();
      home[Symbol.dispose]();
    },
  };
}

const tokens = async (s: Store, q = {}) => {
  const u = await s.sumUsage(q);
  return u.input_tokens + u.output_tokens;
};

describe("budgets hold under concurrency (finding 4)", () => {
  test("20 concurrent turns under daily + monthly + session limits never record more than the daily limit", async () => {
    // Each call may produce up to max_tokens = 100 and reports exactly that: the reservation is an
    // upper bound, so the recorded total must stay within the limit exactly.
    await using up = startFakeUpstream(() => openaiText("ok", { prompt_tokens: 5, completion_tokens: 100 }));
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "sk-own"\nbase_url = "${up.url}"\nmax_tokens = 100\n` +
        `[budgets]\ndaily_tokens = 1000\nmonthly_tokens = 5000\nsession_tokens = 100000\n`,
    );
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => r.turn(i)));
    const served = outcomes.filter((o) => o.stop_reason === "end_turn").length;
    const refused = outcomes.filter((o) => o.stop_reason === "budget").length;
    expect(served + refused).toBe(20);
    expect(served).toBeGreaterThan(0);
    expect(up.requests).toHaveLength(served);
    const recorded = await tokens(r.store);
    expect(recorded).toBe(served * 105);
    expect(recorded).toBeLessThanOrEqual(1000);
  });

  test("large tool schemas count in the reservation: 20 concurrent turns with 12 KB of tools never pass the daily limit", async () => {
    // The upstream reports what a tokenizer would: about 4 characters of the request body a token.
    await using up = startFakeUpstream((req) =>
      openaiText("ok", { prompt_tokens: Math.ceil(JSON.stringify(req.body).length / 4), completion_tokens: 100 }),
    );
    const tools: ToolSpec[] = Array.from({ length: 20 }, (_, i) => ({
      name: `tool_${i}`,
      description: `Tool ${i}: ${"does something useful with the input it is given. ".repeat(10)}`,
      input_schema: { type: "object", properties: { q: { type: "string", description: "x".repeat(40) } } },
    }));
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "sk-own"\nbase_url = "${up.url}"\nmax_tokens = 100\n[budgets]\ndaily_tokens = 5000\n`,
      { tools },
    );
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => r.turn(`t${i}`)));
    const served = outcomes.filter((o) => o.stop_reason === "end_turn").length;
    expect(served).toBeGreaterThan(0);
    expect(up.requests).toHaveLength(served);
    expect(await tokens(r.store)).toBeLessThanOrEqual(5000);
  });

  test("person_daily_tokens: one person's turns are refused at the limit, another person's still run", async () => {
    await using up = startFakeUpstream(() => openaiText("ok", { prompt_tokens: 5, completion_tokens: 100 }));
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "sk-own"\nbase_url = "${up.url}"\nmax_tokens = 100\n[budgets]\nperson_daily_tokens = 300\n`,
    );
    const ada = await Promise.all(Array.from({ length: 6 }, (_, i) => r.turn(`ada${i}`, { person: "telegram:ada" })));
    expect(ada.filter((o) => o.stop_reason === "end_turn").length).toBe(2);
    expect(ada.filter((o) => o.stop_reason === "budget").length).toBe(4);
    expect(await tokens(r.store, { person: "telegram:ada" })).toBe(210);
    expect((await r.turn("grace", { person: "telegram:grace" })).stop_reason).toBe("end_turn");
  });

  test("person_daily_usd: one person's turns are refused at the limit, another person's and turns for nobody still run", async () => {
    // Each call: 5 in + 100 out at GPT-4o's $2.5 / $10 per million = $0.0010125; the reservation holds ~$0.00101.
    await using up = startFakeUpstream(() => openaiText("ok", { prompt_tokens: 5, completion_tokens: 100 }));
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "sk-own"\nbase_url = "${up.url}"\nmax_tokens = 100\n[budgets]\nperson_daily_usd = 0.003\n`,
    );
    const ada = await Promise.all(Array.from({ length: 6 }, (_, i) => r.turn(`ada${i}`, { person: "telegram:ada" })));
    expect(ada.filter((o) => o.stop_reason === "end_turn").length).toBe(2);
    expect(ada.filter((o) => o.stop_reason === "budget").length).toBe(4);
    expect(up.requests).toHaveLength(2);
    expect((await r.store.sumUsage({ person: "telegram:ada" })).cost_usd).toBeCloseTo(0.002025, 9);
    expect((await r.turn("ada-later", { person: "telegram:ada" })).stop_reason).toBe("budget");
    expect((await r.turn("grace", { person: "telegram:grace" })).stop_reason).toBe("end_turn");
    // A person's budget does not apply to a turn for nobody (the operator's own WebSocket).
    expect((await r.turn("ws")).stop_reason).toBe("end_turn");
    expect(up.requests).toHaveLength(4);
  });

  test("person_daily_usd with an unpriced model: a person's turn is refused, not treated as free; a turn for nobody runs", async () => {
    await using up = startFakeUpstream(() => openaiText("ok", { prompt_tokens: 5, completion_tokens: 10 }));
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "house-model-7b"\napi_key = "sk-own"\nbase_url = "${up.url}"\nmax_tokens = 100\n[budgets]\nperson_daily_usd = 5\n`,
    );
    const errors: unknown[] = [];
    const refused = await r.runner.run(
      {
        agent: "main",
        address: {
          key: "main:telegram:bot:ada",
          agent: "main",
          channel: "telegram",
          account: "bot",
          peer: "ada",
          thread: null,
        },
        content: "hi",
        person: "telegram:bot:ada",
      },
      { signal: new AbortController().signal, emit: (e) => e.event === "error" && errors.push(e.data) },
    );
    expect(refused.stop_reason).toBe("budget");
    expect(errors).toEqual([
      expect.objectContaining({ code: -32002, message: expect.stringContaining("house-model-7b has no known price") }),
    ]);
    expect(up.requests).toHaveLength(0);
    expect((await r.turn("ws")).stop_reason).toBe("end_turn");
    expect(up.requests).toHaveLength(1);
  });
});

/** Each wire API's unicode fixture, cut right after its second text delta (usage comes at the end).
 * A cancelled turn aborts on the first text it sees. */
const WIRES = [
  {
    provider: "anthropic",
    model: "claude-sonnet-4-5",
    body: fixture("anthropic/text-unicode.txt"),
    type: "text/event-stream",
  },
  { provider: "openai", model: "gpt-4o", body: fixture("openai/text-unicode.txt"), type: "text/event-stream" },
  {
    provider: "gemini",
    model: "gemini-2.5-flash",
    body: fixture("gemini/text-unicode.txt"),
    type: "text/event-stream",
  },
  { provider: "ollama", model: "qwen3", body: fixture("ollama/text-unicode.ndjson"), type: "application/x-ndjson" },
] as const;
const cutAfterSecondDelta = (body: string) => {
  const sep = body.includes("\n\n") ? "\n\n" : "\n";
  const end = body.indexOf(sep, body.indexOf("Es schneit")) + sep.length;
  return new TextEncoder().encode(body.slice(0, end)).length;
};
void ndjson;

describe("a call that never reports usage still counts (finding 5)", () => {
  for (const w of WIRES) {
    const agentToml = (url: string) =>
      `[[agents]]\nid = "main"\nprovider = "${w.provider}"\nmodel = "${w.model}"\napi_key = "k"\nbase_url = "${url}"\nmax_tokens = 50\n`;

    test(`${w.provider}: a stream cancelled mid-answer (upstream hangs) is recorded at the local estimate`, async () => {
      await using up = startFakeUpstream([
        { headers: { "content-type": w.type }, body: w.body, hangAfterBytes: cutAfterSecondDelta(w.body) },
      ]);
      await using r = rig(agentToml(up.url));
      const ac = new AbortController();
      let seen = "";
      const out = await r.turn(1, {}, { signal: ac.signal, onText: (t) => ((seen += t), ac.abort()) });
      expect(out.stop_reason).toBe("cancelled");
      expect(await up.waitForAbort()).toBe(true);
      const u = await r.store.sumUsage({});
      expect(u.calls).toBe(1);
      expect(u.input_tokens).toBeGreaterThan(0);
      expect(u.output_tokens).toBe(Math.ceil(seen.length / 4));
      expect(u.output_tokens).toBeLessThan(50);
    });

    test(`${w.provider}: a dropped connection mid-answer is recorded at the local estimate and counts against the budget`, async () => {
      await using up = startFakeUpstream([
        { headers: { "content-type": w.type }, body: w.body, dropAfterBytes: cutAfterSecondDelta(w.body) },
      ]);
      // Room for exactly one reservation (prompt estimate + 50): once the dropped call is counted, the next is refused.
      await using r = rig(agentToml(up.url) + `[budgets]\ndaily_tokens = 80\n`);
      let seen = "";
      const out = await r.turn(1, {}, { onText: (t) => void (seen += t) });
      expect(out.stop_reason).toBe("error");
      // (A reset may discard bytes the client had not read yet: at least the first delta arrived.)
      expect(seen).toStartWith("Grüße aus Zürich!");
      const u = await r.store.sumUsage({});
      expect(u.calls).toBe(1);
      expect(u.output_tokens).toBe(Math.ceil(seen.length / 4));
      expect((await r.turn(1)).stop_reason).toBe("budget");
      expect(up.requests).toHaveLength(1);
    });
  }
});

describe("fallbacks are reserved and recorded at the model that answers (finding 6)", () => {
  test("Ollama ($0) failing over to GPT-4o: the $0.05 daily budget stops the second GPT-4o call before it is sent", async () => {
    await using down = startFakeUpstream(() => ({
      status: 503,
      body: [new TextEncoder().encode('{"error":"overloaded"}')],
    }));
    await using gpt = startFakeUpstream(() =>
      openaiText("from gpt-4o", { prompt_tokens: 1000, completion_tokens: 2000 }),
    );
    const routed = ((url: string | URL | Request, init?: RequestInit) =>
      fetch(String(url).replace("https://api.openai.com/v1", gpt.url), init)) as typeof fetch;
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "ollama"\nmodel = "llama3"\nbase_url = "${down.url}"\nmax_tokens = 4096\nfallbacks = [{ provider = "openai", model = "gpt-4o" }]\n[budgets]\ndaily_usd = 0.05\n`,
      { env: { OPENAI_API_KEY: "sk-env" }, fetch: routed },
    );
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push((await r.turn(i)).stop_reason);
    expect(outcomes).toEqual(["end_turn", "budget", "budget", "budget", "budget"]);
    expect(gpt.requests).toHaveLength(1);
    expect(down.requests.length).toBeGreaterThanOrEqual(5);
    // 1000 in + 2000 out at GPT-4o's $2.5 / $10 per million, not Ollama's $0.
    expect((await r.store.sumUsage({})).cost_usd).toBeCloseTo(0.0225, 6);
  });

  test("no key for the agent's own endpoint: no request is made and the error says to run exoclaw onboard; a keyed fallback answers", async () => {
    const calls: string[] = [];
    await using gpt = startFakeUpstream(() =>
      openaiText("from the fallback", { prompt_tokens: 1, completion_tokens: 1 }),
    );
    const spy = ((url: string | URL | Request, init?: RequestInit) => {
      calls.push(String(url));
      return fetch(String(url).replace("https://api.openai.com/v1", gpt.url), init);
    }) as typeof fetch;
    await using alone = rig(`[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\n`, {
      fetch: spy,
    });
    const r = await alone.turn(1);
    expect(r.stop_reason).toBe("error");
    expect(r.error?.message).toBe(
      "anthropic: no API key — run `exoclaw onboard` or `exoclaw secret set anthropic` (or set ANTHROPIC_API_KEY)",
    );
    expect(calls).toEqual([]);
    expect((await alone.store.sumUsage({})).input_tokens).toBe(0); // nothing reserved stays counted
    await using chained = rig(
      `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nfallbacks = [{ provider = "openai", model = "gpt-4o" }]\n`,
      {
        env: { OPENAI_API_KEY: "sk-env" },
        fetch: spy,
      },
    );
    expect((await chained.turn(1)).text).toBe("from the fallback");
    expect(calls).toEqual(["https://api.openai.com/v1/chat/completions"]);
  });

  test("a call the provider refused with an HTTP error (400) is not counted (one cut off after it was sent is: above)", async () => {
    await using bad = startFakeUpstream(() => ({
      status: 400,
      body: [new TextEncoder().encode('{"error":{"message":"bad request","type":"invalid_request_error"}}')],
    }));
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\nbase_url = "${bad.url}"\napi_key_env = "K"\n`,
      { env: { K: "sk-1" } },
    );
    expect((await r.turn(1)).stop_reason).toBe("error");
    expect(bad.requests).toHaveLength(1);
    expect(await tokens(r.store)).toBe(0);
  });

  test("the stored answer names the model that gave it: GPT-4o after Ollama failed, not the agent's own llama3", async () => {
    await using down = startFakeUpstream(() => ({
      status: 503,
      body: [new TextEncoder().encode('{"error":"overloaded"}')],
    }));
    await using gpt = startFakeUpstream(() => openaiText("from gpt-4o", { prompt_tokens: 10, completion_tokens: 2 }));
    const routed = ((url: string | URL | Request, init?: RequestInit) =>
      fetch(String(url).replace("https://api.openai.com/v1", gpt.url), init)) as typeof fetch;
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "ollama"\nmodel = "llama3"\nbase_url = "${down.url}"\nfallbacks = [{ provider = "openai", model = "gpt-4o" }]\n`,
      { env: { OPENAI_API_KEY: "sk-env" }, fetch: routed },
    );
    expect((await r.turn(1)).text).toBe("from gpt-4o");
    const stored = await r.store.history("main:ws:local:p1", { limit: 10 });
    expect(stored.map((m) => [m.role, m.meta])).toEqual([
      ["user", undefined],
      ["assistant", { provider: "openai", model: "gpt-4o", stop_reason: "end_turn" }],
    ]);
  });
});

describe("no model call without a usage record (finding 10)", () => {
  test("a database too full to take a usage row: the turn fails and no request reaches the upstream", async () => {
    await using up = startFakeUpstream(() =>
      openaiText("paid but unrecorded", { prompt_tokens: 5, completion_tokens: 5 }),
    );
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "k"\nbase_url = "${up.url}"\n`,
      { maxPageCount: 40 },
    );
    // Fill the usage table with rows smaller than the runner's (shorter call id, agent, model) until
    // the database refuses one: then no row of the runner's size fits either.
    // A failed batch fails whole, so batches first, then single rows until one is refused.
    const row = (id: string) => ({
      at: Date.now(),
      call: id,
      session: null,
      agent: "m",
      provider: "o",
      model: "g",
      input_tokens: 1,
      output_tokens: 1,
      cost_usd: 0,
    });
    let full = false;
    for (let i = 0; !full && i < 1000; i++) {
      full = (
        await Promise.allSettled(Array.from({ length: 100 }, (_, j) => r.store.recordUsage(row(`f${i}-${j}`))))
      ).some((s) => s.status === "rejected");
    }
    full = false;
    for (let i = 0; !full && i < 10_000; i++)
      full = await r.store.recordUsage(row(`g${i}`)).then(
        () => false,
        () => true,
      );
    expect(full).toBe(true);
    const out = await r.turn(1);
    expect(out.stop_reason).toBe("error");
    expect(up.requests).toHaveLength(0);
  });

  test("a store whose usage writes fail (disk full): no request is made, and no budget is needed for that", async () => {
    await using up = startFakeUpstream(() => openaiText("x", { prompt_tokens: 1, completion_tokens: 1 }));
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "k"\nbase_url = "${up.url}"\n`,
      {
        store: (s) => ({
          ...s,
          kind: s.kind,
          location: s.location,
          recordUsage: () => Promise.reject(new Error("disk I/O error: database or disk is full")),
        }),
      },
    );
    expect(r.config.budgets).toEqual({});
    const out = await r.turn(1);
    expect(out.stop_reason).toBe("error");
    expect(up.requests).toHaveLength(0);
  });
});

describe("provider keys go only to their own endpoint (finding 13)", () => {
  const seenKeys = (up: FakeUpstream) =>
    up.requests.map((q) => q.headers.authorization ?? q.headers["x-api-key"] ?? "");
  test("OPENAI_API_KEY in the environment is never sent to an agent's custom base_url", async () => {
    await using up = startFakeUpstream(() => openaiText("hi", { prompt_tokens: 1, completion_tokens: 1 }));
    await using r = rig(`[[agents]]\nid = "openai"\nprovider = "openai"\nmodel = "gpt-4o"\nbase_url = "${up.url}"\n`, {
      env: { OPENAI_API_KEY: "sk-env-SECRET" },
    });
    // The provider's own credential file must not go there either (an agent named "openai" included).
    const { writeCredential } = await import("../../src/config/index.ts");
    writeCredential(r.home.path, "openai", "sk-file-SECRET");
    await r.runner.run(
      {
        agent: "openai",
        address: {
          key: "openai:ws:local:main",
          agent: "openai",
          channel: "ws",
          account: "local",
          peer: null,
          thread: null,
        },
        content: "hi",
      },
      { signal: new AbortController().signal, emit: () => {} },
    );
    expect(up.requests).toHaveLength(1);
    expect(JSON.stringify(up.requests[0]!.headers)).not.toContain("SECRET");
    // The agent's own credential does go there.
    writeCredential(r.home.path, "agent-openai", "sk-agent-own");
    await r.runner.run(
      {
        agent: "openai",
        address: {
          key: "openai:ws:local:main",
          agent: "openai",
          channel: "ws",
          account: "local",
          peer: null,
          thread: null,
        },
        content: "again",
      },
      { signal: new AbortController().signal, emit: () => {} },
    );
    expect(seenKeys(up)).toEqual(["", "Bearer sk-agent-own"]);
  });

  test("the agent's own api_key wins over the environment at its custom base_url", async () => {
    await using up = startFakeUpstream(() => openaiText("hi", { prompt_tokens: 1, completion_tokens: 1 }));
    await using r = rig(
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "sk-own"\nbase_url = "${up.url}"\n`,
      { env: { OPENAI_API_KEY: "sk-env-SECRET" } },
    );
    await r.turn(1);
    expect(seenKeys(up)).toEqual(["Bearer sk-own"]);
  });
});

describe("write-ahead usage survives a killed gateway (finding 10)", () => {
  test("SIGKILL mid-call: the call's pending row (prompt estimate + max_tokens) is on disk and counts", async () => {
    const body = fixture("openai/text-unicode.txt");
    await using up = startFakeUpstream([
      { headers: { "content-type": "text/event-stream" }, body, hangAfterBytes: cutAfterSecondDelta(body) },
    ]);
    using home = tempDir();
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "k"\nbase_url = "${up.url}"\nmax_tokens = 700\n`,
    );
    const src = (p: string) => JSON.stringify(join(import.meta.dir, "../../src", p));
    const script = `
      const { AgentRunner } = await import(${src("agent/runner.ts")});
      const { providerStream } = await import(${src("agent/provider-factory.ts")});
      const { LiveConfig, loadConfig } = await import(${src("config/index.ts")});
      const { silentLogger } = await import(${src("lib/log.ts")});
      const { openSqliteStore } = await import(${src("store/index.ts")});
      const home = ${JSON.stringify(home.path)};
      const config = loadConfig({ EXOCLAW_HOME: home });
      const store = openSqliteStore(home + "/exoclaw.db");
      const runner = new AgentRunner({ store, live: new LiveConfig(config), memory: { soul: () => "", historyLimit: () => 50, recall: async () => "" }, streamFor: (a) => providerStream(a, { home, env: {}, log: silentLogger }),
        toolsFor: () => ({ specs: () => [], run: async () => ({ content: "", is_error: true }) }), log: silentLogger });
      await runner.run({ agent: "main", address: { key: "main:ws:local:k", agent: "main", channel: "ws", account: "local", peer: "k", thread: null }, content: "hello" },
        { signal: new AbortController().signal, emit: () => {} });`;
    const child = Bun.spawn([process.execPath, "-e", script], { stderr: "pipe", stdout: "ignore" });
    // The upstream has the request and is streaming (then stalls): the call is in flight.
    for (let i = 0; i < 500 && up.requests.length === 0 && child.exitCode === null; i++) await Bun.sleep(10);
    expect(up.requests).toHaveLength(1);
    child.kill("SIGKILL");
    expect(await child.exited).not.toBe(0);
    const store = openSqliteStore(join(home.path, "exoclaw.db"));
    try {
      const u = await store.sumUsage({});
      expect(u.calls).toBe(1);
      expect(u.output_tokens).toBe(700);
      expect(u.input_tokens).toBeGreaterThan(0);
      expect(u.cost_usd).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });
});

describe("the fallback chain announces each step's model before its request (finding 6)", () => {
  test("pulling the `model` event sends nothing; a consumer that stops there makes no request", async () => {
    await using up = startFakeUpstream(() => openaiText("hi", { prompt_tokens: 1, completion_tokens: 1 }));
    using home = tempDir();
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "k"\nbase_url = "${up.url}"\n`,
    );
    const agent = loadConfig({ EXOCLAW_HOME: home.path }).agents[0]!;
    const it = providerStream(agent, { home: home.path, env: {}, log: silentLogger })(
      {
        model: "gpt-4o",
        system: "",
        messages: [{ role: "user", parts: [{ type: "text", text: "hi" }] }],
        tools: [],
        maxTokens: 10,
      },
      new AbortController().signal,
    )[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ type: "model", provider: "openai", model: "gpt-4o" });
    expect(up.requests).toHaveLength(0);
    await it.return?.();
    expect(up.requests).toHaveLength(0);
  });
});
