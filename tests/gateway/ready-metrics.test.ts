import { describe, expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { createMetrics } from "../../src/lib/metrics.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

const TOKEN = "metrics-token-555";
const stream: StreamFn = async function* () {
  yield { type: "text", text: "hi" };
  yield { type: "usage", input_tokens: 4, output_tokens: 2 };
  yield { type: "done", stop_reason: "end_turn" };
};

describe("/ready and /metrics", () => {
  test("need the token when one is set, and report the gateway's state", async () => {
    await using gw = await startTestGateway({ token: TOKEN, streamFor: () => stream });
    expect((await fetch(`${gw.url}/ready`)).status).toBe(401);
    expect((await fetch(`${gw.url}/metrics`, { headers: { authorization: "Bearer nope" } })).status).toBe(401);
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
    const ready = await fetch(`${gw.url}/ready`, auth);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: "ready",
      ready: true,
      store: { kind: "sqlite", ok: true },
      bus: { mode: "local" },
      plugins: { loaded: 0, failed: [] },
    });

    await using ws = await openSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
    await ws.call("ping");
    await ws.call("nope.nothing");
    await ws.call("chat.send", { content: "hello" });
    const text = await (await fetch(`${gw.url}/metrics`, auth)).text();
    expect(text).toContain("# TYPE exoclaw_rpc_requests_total counter");
    expect(text).toContain('exoclaw_rpc_requests_total{method="ping",outcome="ok"} 1');
    expect(text).toContain('exoclaw_rpc_requests_total{method="(unknown)",outcome="error"} 1');
    expect(text).toContain('exoclaw_chat_turns_total{agent="main",stop_reason="end_turn"} 1');
    expect(text).toContain('exoclaw_model_tokens_total{agent="main",direction="input"} 4');
    expect(text).toMatch(/^exoclaw_ws_connections 1$/m);
    expect(text).toMatch(/^exoclaw_process_resident_memory_bytes \d+$/m);
  });

  test("/ready is 503 when the store cannot answer", async () => {
    await using gw = await startTestGateway();
    await gw.store.close();
    const r = await fetch(`${gw.url}/ready`);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { store: { ok: boolean } }).store.ok).toBe(false);
  });
});

test("metrics render escapes label values", () => {
  const m = createMetrics();
  m.inc("x_total", { v: 'a"b\\c' }, 2);
  expect(m.render()).toBe('x_total{v="a\\"b\\\\c"} 2\n');
});
