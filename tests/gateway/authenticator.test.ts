/**
 * One authenticator for every surface (issue 11): the WebSocket upgrade's Bearer, `connect`, the
 * HTTP routes (/ready, /metrics, /v1, /mcp) and the `http` channel's webhook (scheme `none`) all ask
 * the same `Authenticator`, so each refuses a wrong token and takes the right one through it, and a
 * guess spent on one surface counts on every other.
 */
import { describe, expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { StreamFn } from "../../src/agent/loop.ts";
import { type Authenticator, type AuthVerdict, createAuthenticator } from "../../src/auth/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket, tryOpenSocket } from "../helpers/ws.ts";

const TOKEN = "one-check-for-every-door-0123";
type Msg = Record<string, any>;

const echo: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!.parts[0] as { text: string };
  yield { type: "text", text: `echo: ${last.text}` };
  yield { type: "done", stop_reason: "end_turn" };
};

/** The real authenticator, with every verdict it gives written down. */
function watched(maxFailures = 100): Authenticator & { verdicts: AuthVerdict[] } {
  const real = createAuthenticator(TOKEN, { maxFailures, maxGlobalFailures: 1000 });
  const verdicts: AuthVerdict[] = [];
  return {
    required: real.required,
    verdicts,
    check(token, remote) {
      const v = real.check(token, remote);
      verdicts.push(v);
      return v;
    },
    retryAfter: (remote) => real.retryAfter(remote),
  };
}

const TOML = "[gateway]\nopenai_compat = true\nmcp = true\n\n[channels.http]\n";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Each surface: one attempt with `token`, resolving to whether it got in. */
const surfaces: [string, (gw: { url: string; wsUrl: string }, token: string) => Promise<boolean>][] = [
  [
    "the WebSocket upgrade",
    async (gw, token) => {
      const r = await tryOpenSocket(gw.wsUrl, { headers: bearer(token) });
      if (!r.ok) return false;
      await using s = r.socket;
      return (await s.call("ping")).result === "pong";
    },
  ],
  [
    "connect",
    async (gw, token) => {
      await using s = await openSocket(gw.wsUrl);
      const r = await s.call("connect", { token });
      return (r as Msg).result?.server?.name === "exoclaw";
    },
  ],
  ["GET /ready", async (gw, token) => (await fetch(`${gw.url}/ready`, { headers: bearer(token) })).status === 200],
  ["GET /metrics", async (gw, token) => (await fetch(`${gw.url}/metrics`, { headers: bearer(token) })).status === 200],
  [
    "GET /v1/models",
    async (gw, token) => (await fetch(`${gw.url}/v1/models`, { headers: bearer(token) })).status === 200,
  ],
  [
    "POST /mcp",
    async (gw, token) => {
      const c = new Client({ name: "test", version: "1" });
      try {
        await c.connect(
          new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: bearer(token) } }),
        );
      } catch {
        return false;
      }
      await c.close();
      return true;
    },
  ],
  [
    "POST /webhook/http (scheme none)",
    async (gw, token) => {
      const r = await fetch(`${gw.url}/webhook/http`, {
        method: "POST",
        headers: bearer(token),
        body: JSON.stringify({ peer: "alice", text: "hi", id: crypto.randomUUID() }),
      });
      return r.status === 200 && ((await r.json()) as Msg).replies[0].text === "echo: hi";
    },
  ],
];

describe("one authenticator", () => {
  for (const [name, attempt] of surfaces) {
    test(`${name} refuses a wrong token and takes the right one, both through the gateway's authenticator`, async () => {
      const auth = watched();
      await using gw = await startTestGateway({
        token: TOKEN,
        toml: TOML,
        streamFor: () => echo,
        gateway: { authenticator: auth },
      });
      expect(await attempt(gw, "not-the-token")).toBe(false);
      expect(auth.verdicts).toContain("wrong");
      auth.verdicts.length = 0;
      expect(await attempt(gw, TOKEN)).toBe(true);
      expect(auth.verdicts).toContain("ok");
      expect(auth.verdicts).not.toContain("wrong");
    });
  }

  test("guesses on one surface lock the address out of every other", async () => {
    const auth = watched(3);
    await using gw = await startTestGateway({
      token: TOKEN,
      toml: TOML,
      streamFor: () => echo,
      gateway: { authenticator: auth },
    });
    for (let i = 0; i < 3; i++)
      expect((await fetch(`${gw.url}/ready`, { headers: bearer(`guess-${i}`) })).status).toBe(401);
    // Now even the right token is refused, on each surface, with the surface's own rate-limit answer.
    const ready = await fetch(`${gw.url}/ready`, { headers: bearer(TOKEN) });
    expect(ready.status).toBe(429);
    expect(Number(ready.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await ready.json()).toMatchObject({
      error: { code: "rate_limited", data: { retry_after_s: expect.any(Number) } },
    });
    const upgrade = await tryOpenSocket(gw.wsUrl, { headers: bearer(TOKEN) });
    expect(upgrade.ok).toBe(false);
    if (!upgrade.ok) expect(upgrade.error).toContain("429");
    await using s = await openSocket(gw.wsUrl);
    expect(((await s.call("connect", { token: TOKEN })) as Msg).error).toMatchObject({
      code: -32005,
      data: { retry_after_s: expect.any(Number) },
    });
    const models = await fetch(`${gw.url}/v1/models`, { headers: bearer(TOKEN) });
    expect(models.status).toBe(429);
    expect(((await models.json()) as Msg).error).toMatchObject({ type: "rate_limit_error", code: "rate_limited" });
    const mcp = await fetch(`${gw.url}/mcp`, {
      method: "POST",
      headers: { ...bearer(TOKEN), "content-type": "application/json" },
      body: "{}",
    });
    expect(mcp.status).toBe(429);
    expect(((await mcp.json()) as Msg).error.code).toBe(-32005);
    const hook = await fetch(`${gw.url}/webhook/http`, {
      method: "POST",
      headers: bearer(TOKEN),
      body: JSON.stringify({ peer: "a", text: "x" }),
    });
    expect(hook.status).toBe(401);
    expect(auth.verdicts.filter((v) => v === "ok")).toEqual([]);
  });
});
