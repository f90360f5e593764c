import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runExoclaw } from "../helpers/cli.ts";
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

  test("exoclaw status against a self-signed gateway says the certificate is not trusted (not 'no gateway'); with NODE_EXTRA_CA_CERTS it works", async () => {
    await using gw = await startTestGateway({ toml: `[gateway]\ntls_cert = "${cert}"\ntls_key = "${key}"\n` });
    const url = `wss://127.0.0.1:${gw.port}/ws`;
    const untrusted = await runExoclaw(["status", "--url", url], { EXOCLAW_HOME: gw.home });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toContain(
      `the gateway at ${url} answered, but its TLS certificate is not trusted (self signed certificate)`,
    );
    const trusted = await runExoclaw(["status", "--url", url], { EXOCLAW_HOME: gw.home, NODE_EXTRA_CA_CERTS: cert });
    expect(trusted.stderr).toBe("");
    expect(trusted.code).toBe(0);
  });

  test("a plain-HTTP client gets no answer from a TLS gateway", async () => {
    await using gw = await startTestGateway({ toml: `[gateway]\ntls_cert = "${cert}"\ntls_key = "${key}"\n` });
    await expect(fetch(`http://127.0.0.1:${gw.port}/health`)).rejects.toThrow();
  });

  test("a missing certificate file is a clear start error", async () => {
    await expect(
      startTestGateway({ toml: `[gateway]\ntls_cert = "/nonexistent/cert.pem"\ntls_key = "${key}"\n` }),
    ).rejects.toThrow(new Error("gateway.tls_cert: cannot read /nonexistent/cert.pem (ENOENT)"));
  });
});
