import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startTestGateway } from "../helpers/gateway.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/tls");
const cert = join(FIXTURES, "cert.pem");
const key = join(FIXTURES, "key.pem");
const ca = await Bun.file(cert).text();

describe("TLS", () => {
  test("with tls_cert and tls_key the gateway serves HTTPS and WSS", async () => {
    await using gw = await startTestGateway({ toml: `[gateway]\ntls_cert = "${cert}"\ntls_key = "${key}"\n` });
    expect(gw.url).toStartWith("https://");
    const res = await fetch(`${gw.url}/health`, { tls: { ca } } as RequestInit);
    expect(res.status).toBe(200);
    const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/ws`, { tls: { ca } } as never);
    const reply = await new Promise<string>((resolve, reject) => {
      ws.onopen = () => ws.send('{"jsonrpc":"2.0","id":1,"method":"status"}');
      ws.onmessage = (ev) => resolve(String(ev.data));
      ws.onerror = () => reject(new Error("wss failed"));
    });
    ws.close();
    expect(JSON.parse(reply).result.auth).toEqual({ token_required: false, tls: true });
  });

  test("a plain-HTTP client gets no answer from a TLS gateway", async () => {
    await using gw = await startTestGateway({ toml: `[gateway]\ntls_cert = "${cert}"\ntls_key = "${key}"\n` });
    await expect(fetch(`http://127.0.0.1:${gw.port}/health`)).rejects.toThrow();
  });

  test("a missing certificate file is a clear start error", async () => {
    await expect(startTestGateway({ toml: `[gateway]\ntls_cert = "/nonexistent/cert.pem"\ntls_key = "${key}"\n` })).rejects.toThrow(new Error("gateway.tls_cert: cannot read /nonexistent/cert.pem (ENOENT)"));
  });
});
