/**
 * The runner's in-memory history cache is bounded and says how full it is (issue 15's soak): at most
 * 1,000 sessions, each at most its history window, shown by the `exoclaw_history_cache_sessions` and
 * `exoclaw_history_cache_messages` gauges the soak reads to end its warm-up. Real runner, real SQLite,
 * a real OpenAI-format stream from a loopback fake.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { providerStream } from "../../src/agent/provider-factory.ts";
import { AgentRunner } from "../../src/agent/runner.ts";
import { LiveConfig, loadConfig } from "../../src/config/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { createMetrics } from "../../src/lib/metrics.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { sse, startFakeUpstream } from "../helpers/fake-upstream.ts";
import { tempDir } from "../helpers/temp.ts";

const WINDOW = 8;

const gauge = (text: string, name: string): number => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1]);

test("1,050 sessions leave 1,000 cached, each no longer than its window, and the gauges count them", async () => {
  await using up = startFakeUpstream(() => ({
    headers: { "content-type": "text/event-stream" },
    body: sse([
      { choices: [{ index: 0, delta: { role: "assistant", content: "ok" }, finish_reason: null }] },
      { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
      "[DONE]",
    ]),
  }));
  using home = tempDir();
  home.file(
    "config.toml",
    `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "sk-own"\nbase_url = "${up.url}"\n`,
  );
  const store = openSqliteStore(join(home.path, "exoclaw.db"));
  const metrics = createMetrics();
  const runner = new AgentRunner({
    store,
    live: new LiveConfig(loadConfig({ EXOCLAW_HOME: home.path })),
    memory: { soul: () => "", historyLimit: () => WINDOW, recall: async () => "" },
    streamFor: (agent) =>
      providerStream(agent, { home: home.path, env: {}, log: silentLogger, retry: { sleep: async () => {} } }),
    toolsFor: () => ({ specs: () => [], run: async () => ({ content: "no tools", is_error: true }) }),
    log: silentLogger,
    metrics,
  });
  const turn = async (n: number) => {
    const r = await runner.run(
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
      },
      { signal: new AbortController().signal, emit: () => {} },
    );
    expect(r.stop_reason).toBe("end_turn");
  };
  try {
    // One turn (2 messages) in each of 1,050 sessions, then 5 more in the last 20: their windows are full.
    for (let n = 0; n < 1050; n++) await turn(n);
    for (let round = 0; round < 5; round++) for (let n = 1030; n < 1050; n++) await turn(n);
    const text = metrics.render();
    expect(gauge(text, "exoclaw_history_cache_sessions")).toBe(1000);
    // The 980 most recent one-turn sessions hold 2 messages each; the 20 busy ones their window of 8 (not 12).
    expect(gauge(text, "exoclaw_history_cache_messages")).toBe(980 * 2 + 20 * WINDOW);
  } finally {
    await store.close();
  }
}, 60_000);
