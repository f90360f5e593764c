/**
 * The compiled gateway serving TLS with a self-signed certificate (tests/fixtures/tls, for
 * localhost and 127.0.0.1): the CLI says the certificate is not trusted and how to trust it — not
 * "no gateway is answering" — and with NODE_EXTRA_CA_CERTS the same binary connects.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import pkg from "../../../package.json";
import {
  type BinaryGateway,
  binaryHome,
  NATIVE,
  nativeBinary,
  runBinary,
  startBinaryGateway,
} from "../../helpers/binary.ts";

const FIXTURES = join(import.meta.dir, "../../fixtures/tls");
const CERT = join(FIXTURES, "cert.pem");
const KEY = join(FIXTURES, "key.pem");

describe.if(NATIVE !== undefined)("the binary over TLS with a self-signed certificate", () => {
  const home = binaryHome();
  let gw: BinaryGateway;
  let url: string;

  beforeAll(async () => {
    await nativeBinary();
    home.file(
      "config.toml",
      `[gateway]\ntls_cert = "${CERT}"\ntls_key = "${KEY}"\n\n[[agents]]\nid = "main"\nprovider = "ollama"\nmodel = "qwen3"\nbase_url = "http://127.0.0.1:9"\n`,
    );
    gw = await startBinaryGateway(home);
    url = `wss://127.0.0.1:${gw.port}/ws`;
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    home[Symbol.dispose]();
  });

  test("the gateway says it serves https, and answers a client that trusts the certificate", async () => {
    expect(await gw.waitForLog((l) => l.msg === "gateway listening")).toMatchObject({
      url: `https://127.0.0.1:${gw.port}`,
      tls: true,
    });
    const res = await fetch(`https://127.0.0.1:${gw.port}/health`, {
      tls: { ca: await Bun.file(CERT).text() },
    } as RequestInit);
    expect(await res.json()).toEqual({ status: "ok", version: pkg.version });
  });

  test("exoclaw status --url wss://…: exit 1, the certificate is not trusted, with the NODE_EXTRA_CA_CERTS hint", async () => {
    const r = await runBinary(home, ["status", "--url", url]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      `exoclaw: the gateway at ${url} answered, but its TLS certificate is not trusted (self signed certificate): use a certificate this machine trusts, or add it with NODE_EXTRA_CA_CERTS=<file>\n`,
    );
    expect(r.stderr).not.toContain("no gateway is answering");
  });

  test("with NODE_EXTRA_CA_CERTS=<the certificate> the binary trusts it: status and sessions list work", async () => {
    const env = { NODE_EXTRA_CA_CERTS: CERT };
    const r = await runBinary(home, ["status", "--json", "--url", url], { env });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      version: pkg.version,
      port: gw.port,
      auth: { token_required: false, tls: true },
    });
    const sessions = await runBinary(home, ["sessions", "list", "--url", url], { env });
    expect(sessions).toEqual({ code: 0, stdout: "no sessions\n", stderr: "" });
  });
});
