/**
 * The compiled gateway behind an HTTPS reverse proxy with a token, as docs/deployment.md sets it
 * up: `public_url` lets the page on the public origin open /ws with no `allowed_origins` entry, and
 * with the proxy in `trusted_proxies` a stranger guessing tokens through it locks out only their own
 * forwarded address, not everyone behind the proxy. Requests "through the proxy" come from
 * 127.0.0.5 with the proxy's headers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as tcpConnect } from "node:net";
import { type BinaryGateway, binaryHome, NATIVE, nativeBinary, startBinaryGateway } from "../../helpers/binary.ts";
import { openSocket, tryOpenSocket } from "../../helpers/ws.ts";

const TOKEN = "binary-proxy-token-0123456789";
const PROXY = "127.0.0.5";
const PUBLIC = "bot.example.com";

/** One GET /ready from `localAddress` (the proxy, or someone else) with a Bearer token; resolves with the status. */
function readyFrom(localAddress: string, port: number, token: string, forwardedFor: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: "127.0.0.1", port, localAddress }, () => {
      sock.write(
        `GET /ready HTTP/1.1\r\nHost: ${PUBLIC}\r\nAuthorization: Bearer ${token}\r\nX-Forwarded-For: ${forwardedFor}\r\nConnection: close\r\n\r\n`,
      );
    });
    let head = "";
    sock.on("data", (d) => (head += d.toString("latin1")));
    sock.on("end", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)));
    sock.on("error", reject);
  });
}

describe.if(NATIVE !== undefined)("the binary behind an HTTPS proxy, with a token and trusted_proxies", () => {
  const home = binaryHome();
  let gw: BinaryGateway;

  beforeAll(async () => {
    await nativeBinary();
    home.file(
      "config.toml",
      `[gateway]\npublic_url = "https://${PUBLIC}"\ntrusted_proxies = ["${PROXY}"]\n\n[[agents]]\nid = "main"\nprovider = "ollama"\nmodel = "qwen3"\nbase_url = "http://127.0.0.1:9"\n`,
    );
    gw = await startBinaryGateway(home, { env: { EXOCLAW_TOKEN: TOKEN } });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    home[Symbol.dispose]();
  });

  test("the page on the public origin gets the page and opens /ws with the token, no allowed_origins entry needed; another origin is refused", async () => {
    const page = await fetch(`${gw.url}/`, { headers: { host: PUBLIC } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>exoclaw</title>");
    await using s = await openSocket(`ws://127.0.0.1:${gw.port}/ws`, {
      headers: { host: PUBLIC, origin: `https://${PUBLIC}`, authorization: `Bearer ${TOKEN}` },
    });
    expect((await s.call("ping")).result).toBe("pong");
    const other = await tryOpenSocket(`ws://127.0.0.1:${gw.port}/ws`, {
      headers: { host: PUBLIC, origin: "https://evil.example", authorization: `Bearer ${TOKEN}` },
    });
    expect(other.ok).toBe(false);
  });

  test("five wrong tokens through the proxy lock out that forwarded address only: the operator behind the same proxy and on loopback get in", async () => {
    for (let i = 0; i < 5; i++) expect(await readyFrom(PROXY, gw.port, `guess-${i}`, "203.0.113.9")).toBe(401);
    expect(await readyFrom(PROXY, gw.port, TOKEN, "203.0.113.9")).toBe(429);
    expect(await readyFrom(PROXY, gw.port, TOKEN, "198.51.100.7")).toBe(200);
    // A spoofed left-most entry does not change who the proxy says is asking.
    expect(await readyFrom(PROXY, gw.port, TOKEN, "198.51.100.7, 203.0.113.9")).toBe(429);
    expect((await fetch(`${gw.url}/ready`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect(gw.stderr()).toBe("");
  });
});
