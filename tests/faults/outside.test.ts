/**
 * Resource abuse from the outside (issue 15), over a real gateway on loopback: thousands of idle
 * unauthenticated WebSockets (capped per address and in all, closed with 1013, counted, and closed
 * after the auth timeout), and slowloris — a body trickled byte by byte is cut by body_timeout_ms,
 * and connections trickling their headers do not starve anyone else.
 */
import { expect, test } from "bun:test";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";
import { eventually } from "../fuzz/_fuzz.ts";

const TOKEN = "outside-token-0123456789";
const AUTH = { headers: { authorization: `Bearer ${TOKEN}` } };

interface Idle {
  ws: WebSocket;
  opened: Promise<boolean>;
  close: { code: number; reason: string } | null;
}
/** A bare socket that never authenticates; `from` is its X-Forwarded-For (the gateway trusts 127.0.0.1 as a proxy). */
function idle(url: string, from: string): Idle {
  const ws = new WebSocket(url, { headers: { "x-forwarded-for": from } } as never);
  const s: Idle = { ws, opened: new Promise((r) => (ws.onopen = () => r(true))), close: null };
  ws.addEventListener("close", (ev) => (s.close = { code: ev.code, reason: ev.reason }));
  ws.addEventListener("error", () => {});
  return s;
}
const metrics = async (url: string) => (await fetch(`${url}/metrics`, AUTH)).text();

test("unauthenticated sockets beyond the per-address and total caps are closed with 1013; authenticated clients keep being served", async () => {
  const toml = `[gateway]\ntrusted_proxies = ["127.0.0.1"]\nmax_unauthenticated_per_address = 3\nmax_unauthenticated_sockets = 5\n`;
  await using gw = await startTestGateway({ toml, token: TOKEN, gateway: { authTimeoutMs: 60_000 } });
  // Three from one address open (one after another, so which one is fourth is known); the fourth is refused.
  const a: Idle[] = [];
  for (let i = 0; i < 3; i++) {
    a.push(idle(gw.wsUrl, "198.51.100.1"));
    expect(await a[i]!.opened).toBe(true);
  }
  a.push(idle(gw.wsUrl, "198.51.100.1"));
  expect(await eventually(() => a[3]!.close !== null)).toBe(true);
  expect(a[3]!.close).toEqual({
    code: 1013,
    reason: "too many unauthenticated connections from this address (max_unauthenticated_per_address = 3)",
  });
  expect(a.slice(0, 3).every((s) => s.close === null)).toBe(true);
  // Two more from other addresses fit under the total of five; a third does not.
  const b: Idle[] = [];
  for (const ip of ["198.51.100.2", "198.51.100.3"]) {
    b.push(idle(gw.wsUrl, ip));
    expect(await b.at(-1)!.opened).toBe(true);
  }
  b.push(idle(gw.wsUrl, "198.51.100.4"));
  expect(await eventually(() => b[2]!.close !== null)).toBe(true);
  expect(b[2]!.close).toEqual({
    code: 1013,
    reason: "too many unauthenticated connections (max_unauthenticated_sockets = 5)",
  });
  // A client with the token is not counted: it connects and is served.
  await using ok = await openSocket(gw.wsUrl, AUTH);
  expect((await ok.call("ping", undefined, 1)).result).toBe("pong");
  const m = await metrics(gw.url);
  expect(m).toContain("exoclaw_ws_unauthenticated 5");
  expect(m).toContain('exoclaw_ws_refused_total{reason="per_address"} 1');
  expect(m).toContain('exoclaw_ws_refused_total{reason="total"} 1');
  // One that authenticates with `connect` frees its place at once.
  const first = a[0]!;
  first.ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "connect", params: { token: TOKEN } }));
  expect(await eventually(async () => (await metrics(gw.url)).includes("exoclaw_ws_unauthenticated 4"))).toBe(true);
  const again = idle(gw.wsUrl, "198.51.100.9");
  expect(await again.opened).toBe(true);
  for (const s of [...a, ...b, again]) s.ws.close();
});

test("a thousand and more idle unauthenticated sockets: the caps hold, the auth timeout closes them, the gateway keeps serving", async () => {
  const toml = `[gateway]\ntrusted_proxies = ["127.0.0.1"]\n`; // the default caps: 64 per address, 1024 in all
  await using gw = await startTestGateway({ toml, token: TOKEN, gateway: { authTimeoutMs: 8000 } }); // long enough that none expires while 1,200 open on a busy machine
  const all: Idle[] = [];
  for (let i = 0; i < 1200; i++) all.push(idle(gw.wsUrl, `203.0.113.${i % 60}`));
  // Every socket is either open or refused with 1013.
  expect(
    await eventually(
      async () => (await metrics(gw.url)).match(/exoclaw_ws_refused_total\{reason="total"\} (\d+)/)?.[1] === "176",
      20_000,
    ),
  ).toBe(true);
  expect(await eventually(() => all.filter((s) => s.close?.code === 1013).length === 176, 10_000)).toBe(true);
  await using ok = await openSocket(gw.wsUrl, AUTH);
  expect((await ok.call("ping", undefined, 1)).result).toBe("pong");
  expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  // The auth timeout closes the rest (4001), and the count goes back to zero.
  expect(await eventually(() => all.every((s) => s.close !== null), 30_000)).toBe(true);
  expect(all.filter((s) => s.close?.code === 4001).length).toBe(1024);
  expect(await metrics(gw.url)).toContain("exoclaw_ws_unauthenticated 0");
  expect((await ok.call("ping", undefined, 2)).result).toBe("pong");
}, 60_000);

/** A raw TCP client: writes what it is told, collects what comes back. */
async function rawClient(port: number) {
  let got = "";
  let closed = false;
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data: (_s, d) => void (got += new TextDecoder().decode(d)),
      close: () => void (closed = true),
      error: () => void (closed = true),
    },
  });
  return { sock, got: () => got, closed: () => closed };
}

test("slowloris body: a webhook body trickled byte by byte is cut with 408 at body_timeout_ms, and the gateway keeps serving", async () => {
  // A configured channel, whose route reads the body (an unknown one is answered 404 unread).
  await using gw = await startTestGateway({ toml: `[gateway]\nbody_timeout_ms = 400\n\n[channels.http]\n` });
  const c = await rawClient(gw.port);
  const body = JSON.stringify({ peer: "slow", text: "x".repeat(200) });
  c.sock.write(
    `POST /webhook/http HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  let sent = 0;
  // One byte every 20 ms: the whole body would take seconds; the deadline cuts it first.
  while (sent < body.length && c.got() === "") {
    c.sock.write(body[sent++]!);
    await Bun.sleep(20);
  }
  expect(sent).toBeLessThan(body.length);
  expect(c.got()).toStartWith("HTTP/1.1 408");
  expect(c.got()).toContain("body_timeout_ms (400 ms)");
  c.sock.end();
  expect((await fetch(`${gw.url}/health`)).status).toBe(200);
});

test("a body that arrives in time is passed on whole (the deadline buffers it, changes nothing)", async () => {
  await using gw = await startTestGateway({
    toml: `[gateway]\nbody_timeout_ms = 2000\nopenai_compat = true\n`,
    token: TOKEN,
  });
  const r = await fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { ...AUTH.headers, "content-type": "application/json" },
    body: "{not json",
  });
  // The route saw the real bytes and refused them as such (not a timeout, not an empty body).
  expect(r.status).toBe(400);
});

test("slowloris headers: hundreds of connections trickling their headers do not starve /health or an authenticated client", async () => {
  await using gw = await startTestGateway({ token: TOKEN });
  const slow = await Promise.all(Array.from({ length: 300 }, () => rawClient(gw.port)));
  for (const c of slow) c.sock.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  for (let round = 0; round < 5; round++) {
    for (const c of slow) c.sock.write("a");
    // Served in the middle of the trickle, every round.
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  }
  await using ok = await openSocket(gw.wsUrl, AUTH);
  expect((await ok.call("ping", undefined, 1)).result).toBe("pong");
  for (const c of slow) c.sock.end();
});
