/**
 * Egress and secrets, attacked: a hostile plugin (real .wasm in real plugin-host processes) or a
 * crafted request through proxyHttp tries to reach loopback, metadata, other ports, the gateway
 * itself, to set Host, to get a model-written placeholder filled, to send a secret to the wrong host,
 * and to read a secret back in some encoding. Each attempt must fail and leave the target untouched.
 */
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeCredential } from "../../src/config/credentials.ts";
import { scrub } from "../../src/lib/log.ts";
import { classifyAddress, parseAllowEntry } from "../../src/sandbox/egress.ts";
import { type PluginHost, sha256Hex } from "../../src/sandbox/host.ts";
import { type HttpGrant, type HttpProxyOptions, placeholdersIn, proxyHttp } from "../../src/sandbox/http-proxy.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { fixturePath, grant, pluginPath, readWasm, startTestHost } from "../helpers/plugins.ts";

const SECRET = 'sk-"live\\4f9a/8b+7c6d5e x';
const secrets: Record<string, string> = { api_key: SECRET, other_key: "sk-other-0011223344" };

interface Seen {
  method: string;
  path: string;
  host: string | null;
  authorization: string | null;
  headers: Record<string, string>;
}

/** A loopback server recording everything; `/reflect` echoes the Authorization value back in every encoding. */
function startReflector(tls?: { cert: string; key: string }) {
  const seen: Seen[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    ...(tls && { tls: { cert: Bun.file(tls.cert), key: Bun.file(tls.key) } }),
    fetch(req) {
      const u = new URL(req.url);
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      const authorization = req.headers.get("authorization");
      seen.push({ method: req.method, path: u.pathname, host: req.headers.get("host"), authorization, headers });
      if (u.pathname === "/reflect" && authorization) {
        const s = authorization.replace(/^Bearer /, "");
        const e = encodings(s);
        return new Response(JSON.stringify({ echoed: e }) + "\n" + e.join("\n"), {
          status: 302,
          headers: {
            location: `https://evil.example/?k=${encodeURIComponent(s)}`,
            "x-b64": Buffer.from(s).toString("base64"),
            "x-basic": `Basic ${Buffer.from(`user:${s}`).toString("base64")}`,
            "x-hex": Buffer.from(s).toString("hex").toUpperCase(),
            "x-upper": encodeURIComponent(s.toUpperCase()),
            "x-prefix": encodeURIComponent(s.slice(0, 14)),
          },
        });
      }
      return Response.json({ path: u.pathname, host: req.headers.get("host") });
    },
  });
  return {
    port: server.port!,
    seen,
    async [Symbol.asyncDispose]() {
      await server.stop(true);
    },
  };
}

/** Every spelling a reflection of `s` may take. */
function encodings(s: string): string[] {
  const b = Buffer.from(s);
  const u = encodeURIComponent(s);
  return [
    s,
    JSON.stringify(s).slice(1, -1),
    u,
    u.toLowerCase(),
    u.replace(/%20/g, "+"),
    b.toString("base64"),
    b.toString("base64url"),
    Buffer.from(`x${s}`).toString("base64"),
    Buffer.from(`xy${s}`).toString("base64url"),
    Buffer.from(`user:${s}`).toString("base64"),
    b.toString("hex"),
    b.toString("hex").toUpperCase(),
    s.toUpperCase(),
    s.toLowerCase(),
    s.slice(0, 14),
    s.slice(-13),
  ];
}

/** The secret's distinctive parts: none may survive in anything a plugin gets back. */
function expectNoReflection(text: string) {
  for (const e of encodings(SECRET)) {
    // A base64 form differs from the next encoding only at its edges; its middle is what must be gone.
    const core = e.length > 12 ? e.slice(3, -3) : e;
    expect(text).not.toContain(core);
  }
}

async function withHostile(over: Parameters<typeof grant>[1], hostOpts: Parameters<typeof startTestHost>[0] = {}) {
  const t = startTestHost({ secret: (n) => secrets[n] ?? null, ...hostOpts });
  await t.host.load(grant("hostile", over), await readWasm(fixturePath("hostile")));
  return t;
}

const raw = async (host: PluginHost, request: Record<string, unknown>) => {
  const r = await host.callTool("hostile", "raw_http", { request });
  return JSON.parse(r.content) as { status: number; error?: string; headers?: Record<string, string>; body?: string };
};

/** proxyHttp with a fake DNS and a fetch that records instead of connecting. */
function seams(dns: Record<string, string[]>) {
  const fetched: { url: string; headers: Record<string, string>; tls: unknown }[] = [];
  const lookups: string[] = [];
  const opts: HttpProxyOptions = {
    maxResponseBytes: 1 << 20,
    timeoutMs: 2000,
    resolve: async (h) => {
      lookups.push(h);
      const a = dns[h];
      if (!a) throw new Error("ENOTFOUND");
      return a;
    },
    fetch: (async (url: string, init: RequestInit & { tls?: unknown }) => {
      fetched.push({ url, headers: init.headers as Record<string, string>, tls: init.tls });
      return new Response("fine");
    }) as unknown as typeof fetch,
  };
  const call = async (g: Partial<HttpGrant>, request: Record<string, unknown>) =>
    JSON.parse(await proxyHttp(JSON.stringify(request), { allowedHosts: [], secrets, ...g }, opts)) as {
      status: number;
      error?: string;
      body?: string;
    };
  return { call, fetched, lookups };
}

describe("addresses", () => {
  test("every non-public address class is recognised, in every IPv6 spelling that embeds it", () => {
    const cases: [string, string][] = [
      ["127.0.0.1", "loopback"],
      ["127.9.9.9", "loopback"],
      ["::1", "loopback"],
      ["10.1.2.3", "private"],
      ["172.16.0.1", "private"],
      ["172.31.255.255", "private"],
      ["192.168.1.1", "private"],
      ["fc00::1", "private"],
      ["fd12:3456::1", "private"],
      ["169.254.169.254", "link-local"],
      ["fe80::1", "link-local"],
      ["100.64.0.1", "cgnat"],
      ["100.127.255.255", "cgnat"],
      ["224.0.0.1", "multicast"],
      ["ff02::1", "multicast"],
      ["0.0.0.0", "unspecified"],
      ["0.1.2.3", "unspecified"],
      ["::", "unspecified"],
      ["255.255.255.255", "broadcast"],
      ["::ffff:127.0.0.1", "loopback"],
      ["::ffff:7f00:1", "loopback"],
      ["::127.0.0.1", "loopback"],
      ["::ffff:a9fe:a9fe", "link-local"],
      ["64:ff9b::a9fe:a9fe", "link-local"],
      ["64:ff9b::10.0.0.1", "private"],
      ["2002:7f00:1::1", "loopback"],
      ["8.8.8.8", "public"],
      ["172.32.0.1", "public"],
      ["2606:4700:4700::1111", "public"],
      ["64:ff9b::8.8.8.8", "public"],
    ];
    expect(cases.map(([ip]) => [ip, classifyAddress(ip)])).toEqual(cases);
  });

  test("the allowlist grammar: host, host:port, *.host, [v6]:port, scheme prefixes; no port means the default port", () => {
    expect(parseAllowEntry("API.example.com")).toEqual({
      scheme: null,
      host: "api.example.com",
      wildcard: false,
      ip: false,
      port: null,
    });
    expect(parseAllowEntry("api.example.com:8080")).toMatchObject({ host: "api.example.com", port: 8080 });
    expect(parseAllowEntry("*.example.com")).toMatchObject({ host: ".example.com", wildcard: true });
    expect(parseAllowEntry("[::1]:9000")).toMatchObject({ host: "::1", ip: true, port: 9000 });
    expect(parseAllowEntry("http://127.0.0.1:8080")).toMatchObject({
      scheme: "http:",
      host: "127.0.0.1",
      ip: true,
      port: 8080,
    });
    expect(parseAllowEntry("https://api.example.com/")).toMatchObject({
      scheme: "https:",
      host: "api.example.com",
      port: null,
    });
    // Odd IPv4 spellings are IP literals too, normalised.
    expect(parseAllowEntry("0x7f.1:80")).toMatchObject({ host: "127.0.0.1", ip: true });
    for (const bad of ["", "user@host", "host/path", "host:99999", "ftp://host"])
      expect(parseAllowEntry(bad)).toBeNull();
  });
});

describe("egress", () => {
  test("a granted name that resolves to loopback cannot reach the loopback server", async () => {
    await using srv = startReflector();
    await using t = await withHostile({ allowed_hosts: [`localhost:${srv.port}`, "*"] });
    for (const url of [`http://localhost:${srv.port}/x`, `http://localhost.:${srv.port}/x`]) {
      const r = await raw(t.host, { url });
      expect(r.status).toBe(0);
      expect(r.error).toContain("resolves to a private address");
      expect(r.error).toContain("grant the address itself to allow it");
    }
    // A name with one public and one loopback address is refused too: every address is checked.
    const s = seams({ "api.example.com": ["93.184.216.34", "127.0.0.1"], "rebind.example.com": ["::ffff:10.0.0.1"] });
    expect((await s.call({ allowedHosts: ["api.example.com"] }, { url: "http://api.example.com/" })).error).toBe(
      "host api.example.com resolves to a private address (127.0.0.1, loopback); grant the address itself to allow it",
    );
    expect((await s.call({ allowedHosts: ["*.example.com"] }, { url: "http://rebind.example.com/" })).error).toContain(
      "resolves to a private address",
    );
    expect(s.fetched).toHaveLength(0);
    expect(srv.seen).toHaveLength(0);
    // A resolver that never answers fails the request at the timeout, not never.
    const hang = JSON.parse(
      await proxyHttp(
        JSON.stringify({ url: "http://slow.example.com/" }),
        { allowedHosts: ["slow.example.com"], secrets },
        {
          maxResponseBytes: 1024,
          timeoutMs: 200,
          resolve: () => new Promise<string[]>(() => {}),
        },
      ),
    );
    expect(hang).toEqual({ status: 0, error: "cannot resolve slow.example.com: no answer within 200 ms" });
  });

  test("the checked address is the one connected to (no second lookup); the host sets Host and TLS is verified against the name", async () => {
    const s = seams({ "api.example.com": ["93.184.216.34"] });
    const r = await s.call(
      { allowedHosts: ["api.example.com"] },
      { url: "https://api.example.com/v1?q=1", headers: { Host: "169.254.169.254", "X-Ok": "1" } },
    );
    expect(r.status).toBe(200);
    expect(s.lookups).toEqual(["api.example.com"]);
    expect(s.fetched).toEqual([
      {
        url: "https://93.184.216.34/v1?q=1",
        headers: { "X-Ok": "1", host: "api.example.com" },
        tls: { serverName: "api.example.com" },
      },
    ]);
  });

  test("an entry without a port allows only the default port; a port-pinned entry only its port", async () => {
    const s = seams({ "api.example.com": ["93.184.216.34"] });
    const g = { allowedHosts: ["api.example.com", "http://plain.example.com"] };
    for (const url of [
      "http://api.example.com:8080/",
      "https://api.example.com:8443/",
      "http://api.example.com:443/",
      "https://plain.example.com/",
    ]) {
      expect((await s.call(g, { url })).error).toMatch(/is not in this plugin's allowed_hosts$/);
    }
    expect((await s.call(g, { url: "http://user:pw@api.example.com/" })).error).toBe(
      "credentials in the URL are not allowed; use {{secret:NAME}} in a header",
    );
    expect(s.fetched).toHaveLength(0);
    expect((await s.call(g, { url: "http://api.example.com/" })).status).toBe(200);
    expect((await s.call(g, { url: "https://api.example.com/" })).status).toBe(200);
    expect(s.fetched.map((f) => f.url)).toEqual(["http://93.184.216.34/", "https://93.184.216.34/"]);
  });

  test("a hostile plugin cannot set Host or framing headers; an explicitly granted loopback IP:port works", async () => {
    await using srv = startReflector();
    await using t = await withHostile({ allowed_hosts: [`127.0.0.1:${srv.port}`] });
    const r = await raw(t.host, {
      method: "POST",
      url: `http://127.0.0.1:${srv.port}/in`,
      headers: {
        Host: "127.0.0.1:7200",
        Connection: "upgrade",
        "Proxy-Authorization": "Basic eA==",
        "Content-Length": "0",
        "X-Fine": "yes",
      },
      body: "hello",
    });
    expect(r.status).toBe(200);
    expect(srv.seen).toHaveLength(1);
    const got = srv.seen[0]!;
    expect(got.host).toBe(`127.0.0.1:${srv.port}`);
    expect(got.headers["proxy-authorization"]).toBeUndefined();
    expect(got.headers["x-fine"]).toBe("yes");
    expect(got.headers["content-length"]).toBe("5");
    // CR/LF injection in a header value is refused outright.
    expect(
      (await raw(t.host, { url: `http://127.0.0.1:${srv.port}/`, headers: { "X-A": "a\r\nHost: evil" } })).error,
    ).toContain("CR, LF and NUL");
    expect(srv.seen).toHaveLength(1);
  });

  test("the metadata address is refused in every spelling, even under a * grant; loopback and private literals need an explicit IP entry", async () => {
    await using srv = startReflector();
    await using t = await withHostile({ allowed_hosts: ["*", "127.0.0.1"] });
    for (const url of [
      "http://169.254.169.254/latest/meta-data/",
      "http://2852039166/",
      "http://0xa9.0xfe.0xa9.0xfe/",
      "http://[::ffff:169.254.169.254]/",
      "http://[64:ff9b::a9fe:a9fe]/",
      `http://127.0.0.1:${srv.port}/`,
      `http://0x7f.1:${srv.port}/`,
      `http://[::ffff:127.0.0.1]:${srv.port}/`,
      `http://[::1]:${srv.port}/`,
    ]) {
      const r = await raw(t.host, { url });
      expect(r.status).toBe(0);
      expect(r.error).toMatch(/is not in this plugin's allowed_hosts|only an explicit IP literal entry/);
    }
    const s = seams({ "metadata.google.internal": ["169.254.169.254"] });
    expect(
      (await s.call({ allowedHosts: ["metadata.google.internal"] }, { url: "http://metadata.google.internal/" })).error,
    ).toContain("resolves to a private address (169.254.169.254, link-local)");
    expect(s.fetched).toHaveLength(0);
    expect(srv.seen).toHaveLength(0);
  });

  test("the gateway's own port is refused even when 127.0.0.1:<port> is granted, also when it listens on 0.0.0.0", async () => {
    await using gw = startReflector();
    for (const address of ["127.0.0.1", "0.0.0.0", "::"]) {
      await using t = await withHostile(
        { allowed_hosts: [`127.0.0.1:${gw.port}`, `[::ffff:127.0.0.1]:${gw.port}`] },
        { selfAddresses: () => [{ address, port: gw.port }] },
      );
      for (const url of [`http://127.0.0.1:${gw.port}/rpc`, `http://[::ffff:127.0.0.1]:${gw.port}/rpc`]) {
        const r = await raw(t.host, { url });
        expect(r.error).toBe(`${new URL(url).host} is the gateway itself, which plugins may never reach`);
      }
    }
    // The unspecified address is "this machine": never reachable, even granted literally.
    await using t = await withHostile(
      {
        allowed_hosts: [
          `0.0.0.0:${gw.port}`,
          `[::ffff:0.0.0.0]:${gw.port}`,
          `[::]:${gw.port}`,
          `0.0.0.0:${gw.port + 1}`,
        ],
      },
      { selfAddresses: () => [{ address: "127.0.0.1", port: gw.port }] },
    );
    for (const url of [
      `http://0.0.0.0:${gw.port}/metrics`,
      `http://0:${gw.port}/metrics`,
      `http://[::ffff:0.0.0.0]:${gw.port}/`,
      `http://[::]:${gw.port}/`,
    ]) {
      expect((await raw(t.host, { url })).status).toBe(0);
    }
    expect((await raw(t.host, { url: `http://0.0.0.0:${gw.port + 1}/` })).error).toBe(
      "address 0.0.0.0 (unspecified) is never reachable from a plugin",
    );
    expect(gw.seen).toHaveLength(0);
  });

  test("in a real gateway, a [[plugins]] entry granted the gateway's own address cannot reach it; secret_hosts from the config binds", async () => {
    await using gw = await startTestGateway();
    await using other = startReflector();
    mkdirSync(join(gw.home, "plugins"), { recursive: true });
    copyFileSync(fixturePath("hostile"), join(gw.home, "plugins", "hostile.wasm"));
    writeCredential(gw.home, "api_key", SECRET);
    const sha = sha256Hex(await readWasm(fixturePath("hostile")));
    await Bun.write(
      join(gw.home, "config.toml"),
      `[[plugins]]\nname = "hostile"\npath = "plugins/hostile.wasm"\nsha256 = "${sha}"\n` +
        `allowed_hosts = ["127.0.0.1:${gw.port}", "127.0.0.1:${other.port}"]\nsecrets = ["api_key"]\nsecret_hosts = { api_key = ["127.0.0.1:1"] }\n`,
    );
    await gw.plugins.loadFromConfig("hostile");
    const host = gw.plugins.host;
    const r = await raw(host, { url: `${gw.url}/health` });
    expect(r).toEqual({
      status: 0,
      error: `127.0.0.1:${gw.port} is the gateway itself, which plugins may never reach`,
    });
    const s = await raw(host, {
      url: `http://127.0.0.1:${other.port}/`,
      headers: { authorization: "<<secret:api_key>>" },
    });
    expect(s.error).toBe(`secret api_key may only be sent to 127.0.0.1:1, not 127.0.0.1:${other.port}`);
    expect(other.seen).toHaveLength(0);
    expect((await raw(host, { url: `http://127.0.0.1:${other.port}/plain` })).status).toBe(200);
  });

  test("https goes to the checked address with the certificate verified against the requested name", async () => {
    const dir = join(import.meta.dir, "../fixtures/tls");
    await using srv = startReflector({ cert: join(dir, "cert.pem"), key: join(dir, "key.pem") });
    const ca = await Bun.file(join(dir, "cert.pem")).text();
    const dns: Record<string, string[]> = { localhost: ["127.0.0.1"], "evil.test": ["127.0.0.1"] };
    const opts: HttpProxyOptions = {
      maxResponseBytes: 1 << 20,
      timeoutMs: 3000,
      ca,
      resolve: async (h) => dns[h] ?? [],
    };
    const allowedHosts = [`https://localhost:${srv.port}`, `evil.test:${srv.port}`, `127.0.0.1:${srv.port}`];
    const ok = JSON.parse(
      await proxyHttp(
        JSON.stringify({ url: `https://localhost:${srv.port}/tls` }),
        { allowedHosts, secrets: {} },
        opts,
      ),
    );
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ path: "/tls", host: `localhost:${srv.port}` });
    // The certificate is valid for 127.0.0.1 (the address connected to) but not for evil.test: refused.
    const bad = JSON.parse(
      await proxyHttp(
        JSON.stringify({ url: `https://evil.test:${srv.port}/tls` }),
        { allowedHosts, secrets: {} },
        opts,
      ),
    );
    expect(bad.status).toBe(0);
    expect(bad.error).toContain("ERR_TLS_CERT_ALTNAME_INVALID");
    expect(srv.seen).toHaveLength(1);
  });
});

describe("secrets", () => {
  test("placeholdersIn finds a placeholder raw, in any case, JSON-escaped and percent-encoded", () => {
    expect(placeholdersIn("see {{secret:api_key}}")).toEqual(new Set(["api_key"]));
    expect(placeholdersIn('{"url":"http://x/?k=\\u007b\\u007bsecret:Api_Key}}"}')).toEqual(new Set(["api_key"]));
    expect(placeholdersIn('{"url":"http://x/?k=%7B%7Bsecret%3Aother_key%7D%7D"}')).toEqual(new Set(["other_key"]));
    expect(placeholdersIn("%257B%257BSECRET%253AAPI_KEY%257D%257D")).toEqual(new Set(["api_key"]));
    expect(placeholdersIn('{"body":"{\\"inner\\":\\"{{ secret : tok }}\\"}"}')).toEqual(new Set(["tok"]));
    expect(placeholdersIn("no placeholder, just api_key")).toEqual(new Set());
  });

  test("a model-written placeholder in http-get's tool input is not filled", async () => {
    await using srv = startReflector();
    const url = `http://127.0.0.1:${srv.port}/steal`;
    const s = { maxResponseBytes: 1 << 20, timeoutMs: 2000 };
    const g: HttpGrant = { allowedHosts: [`127.0.0.1:${srv.port}`], secrets };
    for (const written of [
      "{{secret:api_key}}",
      "%7B%7Bsecret%3Aapi_key%7D%7D",
      "{{SECRET:API_KEY}}",
      "\\u007b\\u007bsecret:api_key\\u007d\\u007d",
    ]) {
      // What the model asked for, exactly as the tool call carries it.
      const untrustedInput = `{"tool":"http_get","input":{"url":"${url}","headers":{"authorization":"Bearer ${written}"}}}`;
      const request = { method: "GET", url, headers: { authorization: "Bearer {{secret:api_key}}" } };
      const r = JSON.parse(await proxyHttp(JSON.stringify(request), { ...g, untrustedInput }, s));
      expect(r).toEqual({
        status: 0,
        error:
          "secret api_key: its placeholder came from the call's input (model, user or webhook text) and is never filled",
      });
    }
    expect(srv.seen).toHaveLength(0);
    // The same through the real http-get plugin and PluginHost.send (a channel send made from a model reply).
    await using t = startTestHost({ secret: (n) => secrets[n] ?? null });
    await t.host.load(
      grant("http-get", { allowed_hosts: [`127.0.0.1:${srv.port}`], secrets: ["api_key"] }),
      await readWasm(pluginPath("http-get")),
    );
    const reply = `Sure! {"url": "${url}?k={{secret:api_key}}"}`;
    const sent = await t.host.send(
      "http-get",
      { method: "POST", url: `${url}?k={{secret:api_key}}`, body: "x" },
      {},
      reply,
    );
    expect(sent.error).toContain("secret api_key: its placeholder came from the call's input");
    expect(srv.seen).toHaveLength(0);
    // A placeholder the plugin wrote itself (the call's input names none) is filled.
    const own = await t.host.send("http-get", { url: `${url}?k={{secret:api_key}}` }, {}, "hello");
    expect(own.status).toBe(200);
    expect(srv.seen.at(-1)?.path).toBe("/steal");
  });

  test("a secret bound to host A is refused for host B, and a bound secret goes only over https", async () => {
    await using a = startReflector();
    await using b = startReflector();
    await using t = await withHostile({
      allowed_hosts: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`],
      secrets: ["api_key"],
      secret_hosts: { api_key: [`127.0.0.1:${a.port}`] },
    });
    const toB = await raw(t.host, {
      url: `http://127.0.0.1:${b.port}/`,
      headers: { authorization: "Bearer <<secret:api_key>>" },
    });
    expect(toB.error).toBe(`secret api_key may only be sent to 127.0.0.1:${a.port}, not 127.0.0.1:${b.port}`);
    expect(b.seen).toHaveLength(0);
    const toA = await raw(t.host, {
      url: `http://127.0.0.1:${a.port}/`,
      headers: { authorization: "Bearer <<secret:api_key>>" },
    });
    expect(toA.status).toBe(200);
    expect(a.seen[0]?.authorization).toBe(`Bearer ${SECRET}`);
    const s = seams({ "api.example.com": ["93.184.216.34"] });
    const bound = { allowedHosts: ["api.example.com", "*.example.com"], secretHosts: { api_key: ["api.example.com"] } };
    const q = (url: string) => s.call(bound, { url, headers: { authorization: "{{secret:api_key}}" } });
    expect((await q("http://api.example.com/")).error).toBe(
      "secret api_key is sent only over https (grant http://api.example.com explicitly to allow plain http)",
    );
    expect((await q("https://other.example.com/")).error).toBe(
      "secret api_key may only be sent to api.example.com, not other.example.com",
    );
    expect(s.fetched).toHaveLength(0);
    expect((await q("https://api.example.com/")).status).toBe(200);
    expect(s.fetched[0]?.headers.authorization).toBe(SECRET);
  });

  test("a server reflecting the secret in every encoding, in body and headers (Location too), reflects nothing to the plugin", async () => {
    await using srv = startReflector();
    await using t = await withHostile({ allowed_hosts: [`127.0.0.1:${srv.port}`], secrets: ["api_key"] });
    const r = await t.host.callTool("hostile", "raw_http", {
      request: { url: `http://127.0.0.1:${srv.port}/reflect`, headers: { authorization: "Bearer <<secret:api_key>>" } },
    });
    // The server really got (and reflected) the secret…
    expect(srv.seen[0]?.authorization).toBe(`Bearer ${SECRET}`);
    const answer = JSON.parse(r.content) as { status: number; headers: Record<string, string>; body: string };
    expect(answer.status).toBe(302);
    expect(Object.keys(answer.headers)).toEqual(
      expect.arrayContaining(["location", "x-b64", "x-basic", "x-hex", "x-upper", "x-prefix"]),
    );
    expect(answer.headers.location).toStartWith("https://evil.example/?k=");
    // Every reflected line was there, masked (not dropped).
    expect(
      answer.body
        .split("\n")
        .slice(1)
        .every((line) => line.includes("***")),
    ).toBe(true);
    expect(answer.body.split("\n")).toHaveLength(encodings(SECRET).length + 1);
    // …and none of it, in any spelling, reached the plugin, its result or the log.
    expectNoReflection(r.content);
    expectNoReflection(JSON.stringify(answer));
    expectNoReflection(t.logs.join("\n"));
  });

  test("scrub masks every encoding and partial reflections, and leaves ordinary text alone", () => {
    for (const e of encodings(SECRET)) {
      const out = scrub(`before ${e} after`, [SECRET]);
      expect(out).toStartWith("before ");
      expect(out).toEndWith(" after");
      expect(out).toContain("***");
      expectNoReflection(out);
    }
    expect(scrub("an ordinary line about sk- keys and 4f9a", [SECRET])).toBe(
      "an ordinary line about sk- keys and 4f9a",
    );
  });

  test("an error that reflects a secret with quotes and backslashes comes back as valid JSON, masked", async () => {
    const opts: HttpProxyOptions = {
      maxResponseBytes: 1 << 20,
      timeoutMs: 2000,
      resolve: async () => ["93.184.216.34"],
      fetch: (async () => {
        throw new Error(`upstream said: ${JSON.stringify(SECRET)} and \\${SECRET}`);
      }) as unknown as typeof fetch,
    };
    const text = await proxyHttp(
      JSON.stringify({ url: "https://api.example.com/", headers: { authorization: "{{secret:api_key}}" } }),
      { allowedHosts: ["api.example.com"], secrets },
      opts,
    );
    const parsed = JSON.parse(text) as { status: number; error: string };
    expect(parsed.status).toBe(0);
    expect(parsed.error).toStartWith("request failed: upstream said: ");
    expect(parsed.error).toContain("***");
    expectNoReflection(text);
  });

  test("a long secret (a 2.3 KB service-account JSON, an 8 KB PEM) is scrubbed whole, in part and encoded, and scrub never throws", () => {
    const json = JSON.stringify({
      type: "service_account",
      private_key: `-----BEGIN PRIVATE KEY-----\n${"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".repeat(72)}\n-----END PRIVATE KEY-----\n`,
      client_email: "x@y.iam",
    });
    const pem = Array.from(
      { length: 8192 },
      (_, i) => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 7919) % 64],
    ).join("");
    expect(json.length).toBeGreaterThan(2300);
    for (const secret of [json, pem]) {
      for (const shown of [secret, encodeURIComponent(secret), JSON.stringify(secret), secret.slice(100, 160)]) {
        const out = scrub(`leak: ${shown} end`, [secret]);
        expect(out).toStartWith("leak: ");
        expect(out).toEndWith(" end");
        expect(out).not.toContain(secret.slice(100, 140));
      }
    }
  });
});
