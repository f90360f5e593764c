/**
 * The host/plugin boundary of a channel, attacked by a hostile channel plugin (fixture `snoop`):
 * it relays every header and query value it sees, asks for the verification secret by name, and
 * tries to set cookies, redirects and CORS on the gateway's response. Also: guessing signatures.
 */
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { sha256Hex } from "../../src/sandbox/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { fixturePath, readWasm } from "../helpers/plugins.ts";
import { tempDir } from "../helpers/temp.ts";

const WEBHOOK_SECRET = "whsec-Telegram-777";
const PUBLIC_KEY = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const BOT_TOKEN = "123456:bot-token-ABC";
const GATEWAY_TOKEN = "gw-token-Operator-42";

const stream: StreamFn = async function* (req) {
  yield { type: "text", text: `echo: ${(req.messages.at(-1)!.parts[0] as { text: string }).text}` };
  yield { type: "done", stop_reason: "end_turn" };
};

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

async function setup() {
  const home = tempDir();
  const sent: Seen[] = [];
  const platform = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      sent.push({ method: req.method, path: new URL(req.url).pathname, headers, body: await req.text() });
      return Response.json({ ok: true });
    },
  });
  mkdirSync(join(home.path, "plugins"));
  copyFileSync(fixturePath("snoop"), join(home.path, "plugins/snoop.wasm"));
  const sha = sha256Hex(await readWasm(fixturePath("snoop")));
  writeCredential(home.path, "snoop_secret", WEBHOOK_SECRET);
  writeCredential(home.path, "snoop_key", PUBLIC_KEY);
  writeCredential(home.path, "snoop_bot", BOT_TOKEN);
  writeCredential(home.path, "snoop_verify", "verify-Token-9");
  const base = `http://127.0.0.1:${platform.port}`;
  home.file(
    "config.toml",
    `[[plugins]]\nname = "snoop"\npath = "plugins/snoop.wasm"\nsha256 = "${sha}"\nallowed_hosts = ["127.0.0.1:${platform.port}"]\nconfig = { base_url = "${base}" }\n\n` +
      `[[plugins]]\nname = "snoop_open"\npath = "plugins/snoop.wasm"\nsha256 = "${sha}"\nallowed_hosts = ["127.0.0.1:${platform.port}"]\nconfig = { base_url = "${base}", verify = "none" }\n\n` +
      `[channels.signed]\nplugin = "snoop"\nsecrets = { webhook_secret = "snoop_secret", public_key = "snoop_key", verify_token = "snoop_verify", bot_token = "snoop_bot" }\ndm_policy = "open"\n\n` +
      `[channels.open]\nplugin = "snoop_open"\nsecrets = { webhook_secret = "snoop_secret", bot_token = "snoop_bot" }\ndm_policy = "open"\n`,
  );
  return { home, sent, platform };
}

/** A request from a chosen loopback address (127.0.0.2 …), to play a second client. */
function postFrom(
  localAddress: string,
  url: string,
  headers: Record<string, string>,
  body: string,
  method = "POST",
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, localAddress }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await cond()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("a hostile channel plugin", () => {
  for (const kind of ["signed", "open"] as const) {
    test(`${kind} channel: never sees the gateway token, the webhook secret or a signature, and cannot have a verification secret filled in`, async () => {
      const { home, sent, platform } = await setup();
      try {
        await using gw = await startTestGateway({ home: home.path, token: GATEWAY_TOKEN, streamFor: () => stream });
        const r = await fetch(`${gw.url}/webhook/${kind}?hint=${WEBHOOK_SECRET}&page=2`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${GATEWAY_TOKEN}`,
            cookie: `session=${GATEWAY_TOKEN}`,
            "x-telegram-bot-api-secret-token": WEBHOOK_SECRET,
            "x-signature-ed25519": "ab".repeat(64),
            "x-hub-signature-256": "sha256=" + "cd".repeat(32),
            "x-slack-signature": "v0=" + "ef".repeat(32),
            "x-copied-token": `token ${GATEWAY_TOKEN}`,
            "x-benign": "hello",
          },
          body: JSON.stringify({ id: "m1", peer: "alice", text: "hi" }),
        });
        expect(r.status).toBe(200);
        await until(() => sent.some((s) => s.path === "/relay"), "the plugin's relay request");
        const relay = sent.find((s) => s.path === "/relay")!;
        const seen = JSON.parse(relay.body) as {
          text: string;
          seen: { headers: Record<string, string>; query: Record<string, string> };
        };
        expect(seen.text).toBe("echo: hi");
        // What the plugin may see still reaches it.
        expect(seen.seen.headers["x-benign"]).toBe("hello");
        expect(seen.seen.query).toEqual({ page: "2" });
        for (const h of [
          "authorization",
          "cookie",
          "x-telegram-bot-api-secret-token",
          "x-signature-ed25519",
          "x-hub-signature-256",
          "x-slack-signature",
          "x-copied-token",
        ]) {
          expect(seen.seen.headers[h]).toBeUndefined();
        }
        // The request that asked for {{secret:webhook_secret}} / {{secret:public_key}} was refused by the host.
        await until(async () => (await gw.store.pendingInbound(10))[0]?.last_error != null, "the refused send");
        expect((await gw.store.pendingInbound(10))[0]!.last_error).toContain("not granted");
        const everything = JSON.stringify(sent);
        for (const secret of [GATEWAY_TOKEN, WEBHOOK_SECRET, PUBLIC_KEY]) expect(everything).not.toContain(secret);
        expect(sent.map((s) => s.path)).toEqual(["/relay"]);
      } finally {
        await platform.stop(true);
        home[Symbol.dispose]();
      }
    });
  }

  test("cannot set cookies, redirects, CORS or an HTML content type on the gateway's response", async () => {
    const { home, platform } = await setup();
    try {
      await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
      const r = await fetch(`${gw.url}/webhook/signed`, {
        method: "POST",
        headers: { "x-telegram-bot-api-secret-token": WEBHOOK_SECRET },
        body: JSON.stringify({ id: "m2", peer: "alice", text: "hi" }),
        redirect: "manual",
      });
      expect(r.status).toBe(200);
      expect(r.headers.get("set-cookie")).toBeNull();
      expect(r.headers.get("location")).toBeNull();
      expect(r.headers.get("refresh")).toBeNull();
      expect(r.headers.get("access-control-allow-origin")).not.toBe("https://evil.example");
      expect(r.headers.get("access-control-allow-credentials")).toBeNull();
      expect(r.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
      expect(await r.text()).toBe("<script>steal()</script>");
    } finally {
      await platform.stop(true);
      home[Symbol.dispose]();
    }
  });
});

test("guessing webhook signatures is limited per channel and address; the platform's own address keeps working", async () => {
  const { home, sent, platform } = await setup();
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    const url = `${gw.url}/webhook/signed`;
    const body = (id: string) => JSON.stringify({ id, peer: "alice", text: "hi" });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++)
      statuses.push(
        await postFrom("127.0.0.2", url, { "x-telegram-bot-api-secret-token": `guess-${i}` }, body(`g${i}`)),
      );
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual([429, 429]);
    // Guessers on many addresses (60 failures in all) do not add up to a lock on the platform.
    for (let a = 3; a < 8; a++)
      for (let i = 0; i < 10; i++)
        await postFrom(`127.0.0.${a}`, url, { "x-telegram-bot-api-secret-token": `g${a}-${i}` }, body(`g${a}-${i}`));
    // Locked out: even the right secret from the guessing address is not checked any more.
    expect(await postFrom("127.0.0.2", url, { "x-telegram-bot-api-secret-token": WEBHOOK_SECRET }, body("late"))).toBe(
      429,
    );
    // The platform, from its own address, is not affected …
    const ok = await fetch(url, {
      method: "POST",
      headers: { "x-telegram-bot-api-secret-token": WEBHOOK_SECRET },
      body: body("real"),
    });
    expect(ok.status).toBe(200);
    await until(() => sent.length > 0, "the real message's reply");
    // … and neither is another channel from the guessing address.
    expect(await postFrom("127.0.0.2", `${gw.url}/webhook/open`, {}, body("x"))).toBe(200);
    expect((await gw.store.pendingInbound(10)).map((p) => p.id).sort()).toEqual(["open:x", "signed:real"]);
  } finally {
    await platform.stop(true);
    home[Symbol.dispose]();
  }
});

test("guessing the verify token of the GET handshake is limited the same way", async () => {
  const { home, platform } = await setup();
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    const url = (token: string) =>
      `${gw.url}/webhook/signed?hub.mode=subscribe&hub.challenge=c-1&hub.verify_token=${token}`;
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push(await postFrom("127.0.0.2", url(`guess-${i}`), {}, "", "GET"));
    expect(statuses).toEqual([...Array(10).fill(403), 429]);
    expect(await postFrom("127.0.0.2", url("verify-Token-9"), {}, "", "GET")).toBe(429);
    const ok = await fetch(url("verify-Token-9"));
    expect([ok.status, await ok.text()]).toEqual([200, "c-1"]);
  } finally {
    await platform.stop(true);
    home[Symbol.dispose]();
  }
});
