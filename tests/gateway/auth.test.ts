import { describe, expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { loadConfig, writeCredential } from "../../src/config/index.ts";
import { clientAddress, startGateway } from "../../src/gateway/server.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket, tryOpenSocket } from "../helpers/ws.ts";
import { connect as tcpConnect } from "node:net";

/** GET `path` from a chosen loopback source address (127.0.0.0/8 is all ours on Linux); resolves to the status code. */
function getFrom(
  localAddress: string,
  port: number,
  path: string,
  token: string,
  forwardedFor?: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: "127.0.0.1", port, localAddress }, () => {
      const xff = forwardedFor ? `X-Forwarded-For: ${forwardedFor}\r\n` : "";
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n${xff}Connection: close\r\n\r\n`,
      );
    });
    let head = "";
    sock.on("data", (d) => (head += d.toString("latin1")));
    sock.on("end", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)));
    sock.on("error", reject);
  });
}

type Msg = Record<string, any>;
const TOKEN = "correct-horse-battery-staple";
const connect = (token: unknown, id = 1) => ({
  jsonrpc: "2.0",
  id,
  method: "connect",
  params: { token, client: { name: "t", version: "0" } },
});

describe("auth by token", () => {
  test("a bearer header on the upgrade authenticates the socket", async () => {
    await using gw = await startTestGateway({ token: TOKEN });
    await using s = await openSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect((await s.call("ping")).result).toBe("pong");
  });

  test("a first connect request with the token authenticates the socket", async () => {
    await using gw = await startTestGateway({ token: TOKEN });
    await using s = await openSocket(gw.wsUrl);
    s.sendJson(connect(TOKEN));
    const hello = (await s.next()).value as Msg;
    expect(hello.result.server.name).toBe("exoclaw");
    expect((await s.call("status")).result).toMatchObject({ auth: { token_required: true } });
  });

  test("connect over MessagePack works too", async () => {
    await using gw = await startTestGateway({ token: TOKEN });
    await using s = await openSocket(gw.wsUrl);
    s.sendMsgpack(connect(TOKEN, 3));
    const r = await s.next();
    expect(r.binary).toBe(true);
    expect((r.value as Msg).result.protocol).toBe(1);
  });

  const wrong: [string, unknown][] = [
    ["a wrong token", "wrong-token"],
    ["an empty token", ""],
    ["the token one character longer", TOKEN + "x"],
    ["the token one character shorter", TOKEN.slice(0, -1)],
    ["a differently cased token", TOKEN.toUpperCase()],
    ["no token at all", undefined],
  ];
  for (const [name, token] of wrong) {
    test(`connect with ${name} gets -32001 and close 4001`, async () => {
      await using gw = await startTestGateway({ token: TOKEN });
      await using s = await openSocket(gw.wsUrl);
      s.sendJson(connect(token));
      const r = (await s.next()).value as Msg;
      expect(r.error.code).toBe(-32001);
      expect(r.id).toBe(1);
      expect((await s.closed).code).toBe(4001);
      expect(gw.logs.join("\n")).not.toContain(TOKEN);
    });
  }

  for (const [name, header] of [
    ["a wrong bearer token", "Bearer nope"],
    ["a bearer one character longer", `Bearer ${TOKEN}x`],
    ["a bearer one character shorter", `Bearer ${TOKEN.slice(0, -1)}`],
    ["an empty bearer", "Bearer "],
  ] as const) {
    test(`an upgrade with ${name} is refused with 401`, async () => {
      await using gw = await startTestGateway({ token: TOKEN });
      const r = await tryOpenSocket(gw.wsUrl, { headers: { authorization: header } });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toContain("401");
    });
  }

  test("any other method before auth gets -32001 and close 4001", async () => {
    await using gw = await startTestGateway({ token: TOKEN });
    await using s = await openSocket(gw.wsUrl);
    s.sendJson({ jsonrpc: "2.0", id: 5, method: "status" });
    const r = (await s.next()).value as Msg;
    expect(r).toMatchObject({ id: 5, error: { code: -32001 } });
    expect((await s.closed).code).toBe(4001);
  });

  test("a batch before auth is refused", async () => {
    await using gw = await startTestGateway({ token: TOKEN });
    await using s = await openSocket(gw.wsUrl);
    s.sendJson([connect(TOKEN), { jsonrpc: "2.0", id: 2, method: "ping" }]);
    expect(((await s.next()).value as Msg).error.code).toBe(-32001);
    expect((await s.closed).code).toBe(4001);
  });

  test("a socket that does not authenticate in time is closed with 4001", async () => {
    await using gw = await startTestGateway({ token: TOKEN, gateway: { authTimeoutMs: 150 } });
    await using s = await openSocket(gw.wsUrl);
    const closed = await s.closed;
    expect(closed.code).toBe(4001);
    expect(closed.reason).toContain("timeout");
  });

  test("an authenticated socket is not closed by the auth timer", async () => {
    await using gw = await startTestGateway({ token: TOKEN, gateway: { authTimeoutMs: 100 } });
    await using s = await openSocket(gw.wsUrl);
    s.sendJson(connect(TOKEN));
    await s.next();
    await Bun.sleep(250);
    expect((await s.call("ping")).result).toBe("pong");
  });

  test("frames before auth are capped at 64 KiB", async () => {
    await using gw = await startTestGateway({ token: TOKEN });
    await using s = await openSocket(gw.wsUrl);
    s.sendJson({ ...connect(TOKEN), pad: "x".repeat(70 * 1024) });
    const r = (await s.next()).value as Msg;
    expect(r.error.code).toBe(-32007);
    expect((await s.closed).code).toBe(4001);
  });

  // Found by tests/fuzz/rpc.test.ts (issue 15): these three got their error but left the socket open.
  for (const [name, frame, code] of [
    [
      "a frame over max_payload_bytes (under 64 KiB)",
      JSON.stringify({ ...connect(TOKEN), pad: "x".repeat(20_000) }),
      -32007,
    ],
    ["an empty batch", "[]", -32600],
    [
      "a batch over the cap",
      JSON.stringify(Array.from({ length: 101 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "ping" }))),
      -32600,
    ],
  ] as const) {
    test(`${name} before auth gets ${code} and closes the socket`, async () => {
      await using gw = await startTestGateway({ token: TOKEN, toml: "[gateway]\nmax_payload_bytes = 16384\n" });
      await using s = await openSocket(gw.wsUrl);
      s.sendText(frame);
      expect(((await s.next()).value as Msg).error.code).toBe(code);
      expect((await s.closed).code).toBe(4001);
    });
  }

  test("garbage before auth closes the socket", async () => {
    await using gw = await startTestGateway({ token: TOKEN });
    await using s = await openSocket(gw.wsUrl);
    s.sendText("{{{");
    expect(((await s.next()).value as Msg).error.code).toBe(-32700);
    expect((await s.closed).code).toBe(4001);
  });

  test("repeated failures from one address are rate-limited, loopback included", async () => {
    await using gw = await startTestGateway({
      token: TOKEN,
      gateway: { limiter: { maxFailures: 3, windowMs: 60_000 } },
    });
    for (let i = 0; i < 3; i++) {
      await using s = await openSocket(gw.wsUrl);
      s.sendJson(connect("guess-" + i));
      expect(((await s.next()).value as Msg).error.code).toBe(-32001);
    }
    // Now even the right token is refused until the window passes.
    await using s = await openSocket(gw.wsUrl);
    s.sendJson(connect(TOKEN));
    const r = (await s.next()).value as Msg;
    expect(r.error.code).toBe(-32005);
    expect(r.error.data.retry_after_s).toBeGreaterThan(0);
    expect((await s.closed).code).toBe(4001);
    const viaHeader = await tryOpenSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(viaHeader.ok).toBe(false);
    if (!viaHeader.ok) expect(viaHeader.error).toContain("429");
  });

  test("the gateway keeps serving authenticated clients while a guesser is locked out", async () => {
    await using gw = await startTestGateway({ token: TOKEN, gateway: { limiter: { maxFailures: 1 } } });
    await using good = await openSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
    const bad = await tryOpenSocket(gw.wsUrl, { headers: { authorization: "Bearer guess" } });
    expect(bad.ok).toBe(false);
    expect((await good.call("ping")).result).toBe("pong");
  });
});

describe("token guessing from many addresses", () => {
  test("200 guesses from 40 loopback addresses run into the global limit; the operator's address keeps working", async () => {
    await using gw = await startTestGateway({ token: TOKEN });
    expect(await getFrom("127.0.0.1", gw.port, "/ready", TOKEN)).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++)
      statuses.push(await getFrom(`127.0.0.${2 + (i % 40)}`, gw.port, "/ready", `guess-${i}`));
    const wrong = statuses.filter((s) => s === 401).length;
    // Per address 5 guesses would allow all 200; the global limit stops them after 50.
    expect(wrong).toBe(50);
    expect(statuses.filter((s) => s === 429).length).toBe(150);
    expect(await getFrom("127.0.0.77", gw.port, "/ready", TOKEN)).toBe(429);
    expect(await getFrom("127.0.0.1", gw.port, "/ready", TOKEN)).toBe(200);
  });
});

describe("behind a reverse proxy", () => {
  test("with trusted_proxies, a guesser behind the proxy locks out only itself; X-Forwarded-For from anyone else is ignored", async () => {
    await using gw = await startTestGateway({ token: TOKEN, toml: '[gateway]\ntrusted_proxies = ["127.0.0.5"]\n' });
    // Through the proxy (127.0.0.5): 5 wrong tokens from 203.0.113.9 lock 203.0.113.9 …
    for (let i = 0; i < 5; i++)
      expect(await getFrom("127.0.0.5", gw.port, "/ready", `guess-${i}`, "203.0.113.9")).toBe(401);
    expect(await getFrom("127.0.0.5", gw.port, "/ready", TOKEN, "203.0.113.9")).toBe(429);
    // … not the operator behind the same proxy, and a spoofed left-most entry changes nothing.
    expect(await getFrom("127.0.0.5", gw.port, "/ready", TOKEN, "198.51.100.7")).toBe(200);
    expect(await getFrom("127.0.0.5", gw.port, "/ready", TOKEN, "198.51.100.7, 203.0.113.9")).toBe(429);
    // A client that is not the proxy cannot pick its address with the header.
    for (let i = 0; i < 5; i++) await getFrom("127.0.0.6", gw.port, "/ready", `g-${i}`, `192.0.2.${i}`);
    expect(await getFrom("127.0.0.6", gw.port, "/ready", TOKEN, "192.0.2.200")).toBe(429);
  });

  test("clientAddress trusts X-Forwarded-For only from a trusted proxy, right to left", () => {
    expect(clientAddress("10.0.0.1", "1.2.3.4", [])).toBe("10.0.0.1");
    expect(clientAddress("10.0.0.1", "1.2.3.4", ["10.0.0.1"])).toBe("1.2.3.4");
    expect(clientAddress("::ffff:10.0.0.1", "9.9.9.9, 1.2.3.4, 10.0.0.2", ["10.0.0.1", "10.0.0.2"])).toBe("1.2.3.4");
    expect(clientAddress("10.0.0.1", "10.0.0.1", ["10.0.0.1"])).toBe("10.0.0.1");
    expect(clientAddress("10.0.0.1", null, ["10.0.0.1"])).toBe("10.0.0.1");
  });
});

describe("origin and host rules", () => {
  test("a cross-origin upgrade is refused with 403 on loopback, a same-origin one works", async () => {
    await using gw = await startTestGateway();
    const evil = await tryOpenSocket(gw.wsUrl, { headers: { origin: "http://evil.example" } });
    expect(evil.ok).toBe(false);
    if (!evil.ok) expect(evil.error).toContain("403");
    const otherPort = await tryOpenSocket(gw.wsUrl, { headers: { origin: `http://127.0.0.1:${gw.port + 1}` } });
    expect(otherPort.ok).toBe(false);
    await using same = await openSocket(gw.wsUrl, { headers: { origin: `http://127.0.0.1:${gw.port}` } });
    expect((await same.call("ping")).result).toBe("pong");
  });

  test("origins in allowed_origins may connect", async () => {
    await using gw = await startTestGateway({ toml: '[gateway]\nallowed_origins = ["https://app.example.com"]\n' });
    await using s = await openSocket(gw.wsUrl, { headers: { origin: "https://app.example.com" } });
    expect((await s.call("ping")).result).toBe("pong");
    const other = await tryOpenSocket(gw.wsUrl, { headers: { origin: "https://evil.example.com" } });
    expect(other.ok).toBe(false);
  });

  test("a DNS-rebinding Host is refused by a gateway without a token", async () => {
    await using gw = await startTestGateway();
    const res = await fetch(`${gw.url}/ws`, {
      headers: { host: `evil.example:${gw.port}`, origin: `http://evil.example:${gw.port}` },
    });
    expect(res.status).toBe(403);
    // What an operator behind a reverse proxy sees: the reason and the way out.
    const proxied = await fetch(`${gw.url}/ready`, { headers: { host: "bot.example.com" } });
    expect(proxied.status).toBe(403);
    const { error } = (await proxied.json()) as { error: { message: string } };
    expect(error.message).toContain("host bot.example.com not allowed");
    expect(error.message).toContain("--token or EXOCLAW_TOKEN");
    // Logged once (a minute), not per request.
    const warned = gw.logs.filter((l) => l.includes("DNS-rebinding guard"));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain("evil.example");
    const health = await fetch(`${gw.url}/health`, { headers: { host: "evil.example" } });
    expect(health.status).toBe(200);
  });

  test("public_url without a token: the proxy's host name reaches signed webhooks only; the page, /ws, /v1 and the token-less http channel stay loopback-only", async () => {
    const sent: string[] = [];
    const api = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        sent.push(((await req.json()) as { text: string }).text);
        return Response.json({ ok: true, result: { message_id: 1 } });
      },
    });
    using home = tempDir();
    writeCredential(home.path, "tg_secret", "proxy-secret-1");
    writeCredential(home.path, "tg_bot", "123:bot-token");
    home.file(
      "config.toml",
      `[gateway]\npublic_url = "https://bot.example.com"\nopenai_compat = true\n\n` +
        `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n` +
        `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\ndm_policy = "open"\n\n[channels.http]\n`,
    );
    const stream: StreamFn = async function* () {
      yield { type: "text", text: "hi through the proxy" };
      yield { type: "done", stop_reason: "end_turn" };
    };
    try {
      await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
      const viaProxy = (path: string, init: RequestInit = {}) =>
        fetch(`${gw.url}${path}`, {
          ...init,
          headers: { host: "bot.example.com", ...(init.headers as Record<string, string>) },
        });
      const update =
        '{"update_id":1,"message":{"message_id":1,"from":{"id":7,"is_bot":false,"first_name":"A"},"chat":{"id":7,"type":"private"},"date":1,"text":"hello"}}';
      const tg = await viaProxy("/webhook/telegram", {
        method: "POST",
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": "proxy-secret-1" },
        body: update,
      });
      expect(tg.status).toBe(200);
      for (let i = 0; i < 200 && sent.length === 0; i++) await Bun.sleep(20);
      expect(sent).toEqual(["hi through the proxy"]);
      // The http channel has no signature: on the public host it is the gateway's own authority, refused.
      const http = await viaProxy("/webhook/http", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"peer":"x","text":"y"}',
      });
      expect(http.status).toBe(401);
      for (const path of ["/", "/ready", "/ws", "/v1/models"]) {
        const r = await viaProxy(path);
        expect({ path, status: r.status }).toEqual({ path, status: 403 });
        expect(((await r.json()) as { error: { message: string } }).error.message).toContain("answers only /webhook/");
      }
      // Any other name is still the DNS-rebinding guard's.
      expect(
        (await fetch(`${gw.url}/webhook/telegram`, { method: "POST", headers: { host: "evil.example" }, body: update }))
          .status,
      ).toBe(403);
      // Loopback keeps everything.
      expect((await fetch(`${gw.url}/ready`)).status).toBe(200);
    } finally {
      await api.stop(true);
    }
  });

  test("public_url with a token: the page behind an HTTPS proxy may open /ws from the public origin with no allowed_origins entry", async () => {
    await using gw = await startTestGateway({
      token: TOKEN,
      toml: '[gateway]\npublic_url = "https://bot.example.com"\n',
    });
    await using s = await openSocket(gw.wsUrl, {
      headers: { host: "bot.example.com", origin: "https://bot.example.com", authorization: `Bearer ${TOKEN}` },
    });
    expect((await s.call("ping")).result).toBe("pong");
    const other = await tryOpenSocket(gw.wsUrl, {
      headers: { host: "bot.example.com", origin: "https://evil.example", authorization: `Bearer ${TOKEN}` },
    });
    expect(other.ok).toBe(false);
  });
});

describe("exposure", () => {
  test("a non-loopback bind without a token refuses to start", async () => {
    for (const bind of ["0.0.0.0", "::", "192.168.1.10"]) {
      const config = loadConfig({ EXOCLAW_HOME: "/nonexistent-exoclaw" }, { bind, port: 0 });
      await expect(startGateway({ config, log: silentLogger })).rejects.toThrow(/non-loopback address needs a token/);
    }
  });

  test("a non-loopback bind with a token starts and requires auth", async () => {
    await using gw = await startTestGateway({ bind: "0.0.0.0", token: TOKEN });
    const url = `ws://127.0.0.1:${gw.port}/ws`;
    await using s = await openSocket(url);
    s.sendJson({ jsonrpc: "2.0", id: 1, method: "ping" });
    expect(((await s.next()).value as Msg).error.code).toBe(-32001);
  });

  test("a port in use is a clear error", async () => {
    await using gw = await startTestGateway();
    const config = loadConfig({ EXOCLAW_HOME: "/nonexistent-exoclaw" }, { port: gw.port });
    await expect(startGateway({ config, log: silentLogger })).rejects.toThrow(
      `port ${gw.port} on 127.0.0.1 is already in use`,
    );
  });
});
