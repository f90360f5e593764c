import { describe, expect, test } from "bun:test";
import { providerStream } from "../../src/agent/provider-factory.ts";
import { ProviderError } from "../../src/agent/provider-error.ts";
import { withRetries } from "../../src/agent/retry.ts";
import type { Provider, StreamEvent } from "../../src/agent/types.ts";
import { loadConfig, writeCredential } from "../../src/config/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { sse, startFakeUpstream } from "../helpers/fake-upstream.ts";
import { tempDir } from "../helpers/temp.ts";
import { baseRequest, collect } from "./providers/suite.ts";

function scripted(attempts: StreamEvent[][]): Provider & { calls: number } {
  const p = {
    id: "openai" as const,
    calls: 0,
    async *stream() {
      const evs = attempts[p.calls++] ?? [];
      for (const e of evs) yield e;
    },
  };
  return p;
}
const busy = (after?: number) =>
  new ProviderError("openai", "openai: overloaded (503)", {
    status: 503,
    retryable: true,
    ...(after !== undefined && { retryAfterMs: after }),
  });

describe("withRetries", () => {
  test("retries a retryable failure with exponential backoff, then succeeds", async () => {
    const p = scripted([
      [{ type: "error", error: busy() }],
      [{ type: "error", error: busy() }],
      [
        { type: "text", text: "ok" },
        { type: "done", stop_reason: "end_turn" },
      ],
    ]);
    const slept: number[] = [];
    const events = await collect(
      withRetries(p, { sleep: async (ms) => void slept.push(ms), baseDelayMs: 100 }).stream(baseRequest(), {}),
    );
    expect(p.calls).toBe(3);
    expect(events.map((e) => e.type)).toEqual(["text", "done"]);
    expect(slept[0]).toBeGreaterThanOrEqual(50);
    expect(slept[0]).toBeLessThanOrEqual(100);
    expect(slept[1]).toBeGreaterThanOrEqual(100);
    expect(slept[1]).toBeLessThanOrEqual(200);
  });

  test("never retries after output was yielded, nor a non-retryable error", async () => {
    const afterText = scripted([
      [
        { type: "text", text: "partial" },
        { type: "error", error: busy() },
      ],
    ]);
    expect(
      (await collect(withRetries(afterText, { sleep: async () => {} }).stream(baseRequest(), {}))).map((e) => e.type),
    ).toEqual(["text", "error"]);
    expect(afterText.calls).toBe(1);
    const auth = scripted([
      [{ type: "error", error: new ProviderError("openai", "openai: authentication failed (401)", { status: 401 }) }],
    ]);
    await collect(withRetries(auth, { sleep: async () => {} }).stream(baseRequest(), {}));
    expect(auth.calls).toBe(1);
  });

  test("Retry-After is capped; an abort during the wait stops at once", async () => {
    const p = scripted([[{ type: "error", error: busy(120_000) }], [{ type: "done", stop_reason: "end_turn" }]]);
    const slept: number[] = [];
    await collect(
      withRetries(p, { sleep: async (ms) => void slept.push(ms), maxDelayMs: 8000 }).stream(baseRequest(), {}),
    );
    expect(slept).toEqual([8000]);
    const ac = new AbortController();
    const q = scripted([[{ type: "error", error: busy(60_000) }], [{ type: "done", stop_reason: "end_turn" }]]);
    const started = Date.now();
    const pending = collect(withRetries(q).stream(baseRequest(), { signal: ac.signal }));
    setTimeout(() => ac.abort(), 20);
    const events = await pending;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(q.calls).toBe(1);
    expect(events.at(-1)?.type).toBe("error");
  });
});

describe("an agent's provider chain", () => {
  test("after retries the agent's fallbacks are tried in order, each with its own model and key", async () => {
    await using down = startFakeUpstream(() => ({
      status: 503,
      body: [new TextEncoder().encode('{"error":{"message":"down","type":"server_error"}}')],
    }));
    await using ok = startFakeUpstream(() => ({
      body: sse([
        { choices: [{ index: 0, delta: { content: "from the fallback" }, finish_reason: null }] },
        { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
        "[DONE]",
      ]),
    }));
    using home = tempDir();
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "primary-model"\nbase_url = "${down.url}"\nfallbacks = [{ provider = "openai", model = "fallback-model" }]\n`,
    );
    const agent = loadConfig({ EXOCLAW_HOME: home.path }).agents[0]!;
    // Fallbacks use their provider's default URL; point OpenAI's at the second fake through fetch.
    const routed: typeof fetch = ((url: string | URL | Request, init?: RequestInit) =>
      fetch(String(url).replace("https://api.openai.com/v1", ok.url), init)) as typeof fetch;
    const stream = providerStream(agent, {
      home: home.path,
      env: { OPENAI_API_KEY: "sk-env-key-000" },
      log: silentLogger,
      fetch: routed,
      retry: { sleep: async () => {} },
    });
    const events = await collect(stream(baseRequest(), new AbortController().signal));
    expect(events.filter((e) => e.type === "text").map((e) => (e as { text: string }).text)).toEqual([
      "from the fallback",
    ]);
    expect(down.requests.map((r) => r.body.model)).toEqual(["primary-model", "primary-model", "primary-model"]);
    expect(ok.requests.map((r) => r.body.model)).toEqual(["fallback-model"]);
    expect(ok.requests[0]!.headers.authorization).toBe("Bearer sk-env-key-000");
  });

  test("OpenAI insufficient_quota is not retried", async () => {
    await using up = startFakeUpstream([
      {
        status: 429,
        body: [
          new TextEncoder().encode(
            '{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}',
          ),
        ],
      },
    ]);
    using home = tempDir();
    home.file("config.toml", `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "m"\nbase_url = "${up.url}"\n`);
    const agent = loadConfig({ EXOCLAW_HOME: home.path }).agents[0]!;
    const events = await collect(
      providerStream(agent, { home: home.path, env: {}, log: silentLogger, retry: { sleep: async () => {} } })(
        baseRequest(),
        new AbortController().signal,
      ),
    );
    expect(up.requests).toHaveLength(1);
    expect((events.at(-1) as { error: ProviderError }).error.message).toMatch(/^openai: quota exhausted \(429\)/);
  });
  const okReply = () => ({
    body: sse([
      { choices: [{ index: 0, delta: { content: "answer" }, finish_reason: null }] },
      { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
      "[DONE]",
    ]),
  });

  test("each step announces its provider and model before its request; a step with no key for its own endpoint is skipped with no announcement and no request", async () => {
    await using down = startFakeUpstream(() => ({
      status: 503,
      body: [new TextEncoder().encode('{"error":{"message":"down","type":"server_error"}}')],
    }));
    await using up = startFakeUpstream(() => okReply());
    using home = tempDir();
    // Own step: OpenAI at a custom endpoint that is down. Then Anthropic with no key anywhere, then OpenAI's default endpoint.
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "own-model"\nbase_url = "${down.url}"\nfallbacks = [{ provider = "anthropic", model = "claude-x" }, { provider = "openai", model = "gpt-y" }]\n`,
    );
    const agent = loadConfig({ EXOCLAW_HOME: home.path }).agents[0]!;
    const seen: string[] = [];
    const routed: typeof fetch = ((url: string | URL | Request, init?: RequestInit) => {
      seen.push(String(url));
      return fetch(String(url).replace("https://api.openai.com/v1", up.url), init);
    }) as typeof fetch;
    const events = await collect(
      providerStream(agent, {
        home: home.path,
        env: { OPENAI_API_KEY: "sk-env-key-000" },
        log: silentLogger,
        fetch: routed,
        retry: { maxAttempts: 1 },
      })(baseRequest(), new AbortController().signal),
    );
    expect(events.filter((e) => e.type === "model")).toEqual([
      { type: "model", provider: "openai", model: "own-model" },
      { type: "model", provider: "openai", model: "gpt-y" },
    ]);
    expect(events.map((e) => e.type)).toEqual(["model", "model", "text", "done"]);
    expect(seen.some((u) => u.includes("anthropic"))).toBe(false);
    expect(up.requests.map((r) => r.body.model)).toEqual(["gpt-y"]);
  });

  test("with no key anywhere the stream ends in the error that says what to do, and nothing is sent", async () => {
    using home = tempDir();
    home.file("config.toml", `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-x"\n`);
    const agent = loadConfig({ EXOCLAW_HOME: home.path }).agents[0]!;
    let sent = 0;
    const counting = (() => (sent++, Promise.reject(new Error("no request expected")))) as unknown as typeof fetch;
    const events = await collect(
      providerStream(agent, { home: home.path, env: {}, log: silentLogger, fetch: counting })(
        baseRequest(),
        new AbortController().signal,
      ),
    );
    expect(sent).toBe(0);
    expect(events).toHaveLength(1);
    const error = (events[0] as { error: ProviderError }).error;
    expect(error.message).toBe(
      "anthropic: no API key — run `exoclaw onboard` or `exoclaw secret set anthropic` (or set ANTHROPIC_API_KEY)",
    );
    expect(error.status).toBe(401);
  });

  test("a key stored after the stream function was made is used at the next call (no restart)", async () => {
    await using up = startFakeUpstream(() => okReply());
    using home = tempDir();
    home.file("config.toml", `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "m"\n`);
    const agent = loadConfig({ EXOCLAW_HOME: home.path }).agents[0]!;
    const routed: typeof fetch = ((url: string | URL | Request, init?: RequestInit) =>
      fetch(String(url).replace("https://api.openai.com/v1", up.url), init)) as typeof fetch;
    const stream = providerStream(agent, { home: home.path, env: {}, log: silentLogger, fetch: routed });
    expect((await collect(stream(baseRequest(), new AbortController().signal))).map((e) => e.type)).toEqual(["error"]);
    writeCredential(home.path, "openai", "sk-stored-later-111");
    expect((await collect(stream(baseRequest(), new AbortController().signal))).map((e) => e.type)).toEqual([
      "model",
      "text",
      "done",
    ]);
    expect(up.requests.map((r) => r.headers.authorization)).toEqual(["Bearer sk-stored-later-111"]);
  });

  test("a step cut off by the caller's abort is not followed by a fallback", async () => {
    await using hung = startFakeUpstream(() => ({
      body: sse([{ choices: [{ index: 0, delta: { content: "hal" }, finish_reason: null }] }]),
      hangAfterBytes: 10_000,
    }));
    await using spare = startFakeUpstream(() => okReply());
    using home = tempDir();
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "m"\nbase_url = "${hung.url}"\napi_key = "sk-own-000"\nfallbacks = [{ provider = "openai", model = "spare" }]\n`,
    );
    const agent = loadConfig({ EXOCLAW_HOME: home.path }).agents[0]!;
    const routed: typeof fetch = ((url: string | URL | Request, init?: RequestInit) =>
      fetch(String(url).replace("https://api.openai.com/v1", spare.url), init)) as typeof fetch;
    const ac = new AbortController();
    const events: StreamEvent[] = [];
    for await (const e of providerStream(agent, {
      home: home.path,
      env: { OPENAI_API_KEY: "sk-env-000" },
      log: silentLogger,
      fetch: routed,
    })(baseRequest(), ac.signal)) {
      events.push(e);
      if (e.type === "text") ac.abort();
    }
    expect((events.at(-1) as { error: ProviderError }).error.reason).toBe("aborted");
    expect(spare.requests).toHaveLength(0);
  });
});
