/**
 * Several gateways on one NATS (issue 14), through the built-in Telegram plugin and a fake Telegram
 * Bot API and Anthropic API on loopback speaking their real wire formats: webhooks spread over two
 * gateways, each also resent to the other, are answered exactly once each and a chat's conversation
 * continues from one gateway to the other; a gateway SIGKILLed mid-turn (a real child process) loses
 * nothing: the other answers that message, once; while NATS is stopped a webhook gets 503 (the
 * platform retries) and `/health` still answers, and the retry is answered once NATS is back; peers
 * `a.*` and `>` stay in their own sessions.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { writeCredential } from "../../src/config/index.ts";
import { anthropicReply, lastUserText } from "../e2e/binary/_replies.ts";
import type { RecordedRequest } from "../helpers/fake-upstream.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { startJetStream, waitFor, type JsServers } from "../helpers/jetstream.ts";
import { tempDir } from "../helpers/temp.ts";

const SECRET = "S3cr3t_token-1";
let js: JsServers;

/** The fake platform: every sendMessage (chat id and text); the fake model: answers, or holds the ones `hold` names. */
const sends: { chat: string; text: string }[] = [];
const modelCalls: string[] = [];
let hold: (text: string) => boolean = () => false;
const held: (() => void)[] = [];
let platform: ReturnType<typeof Bun.serve>;
let model: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  js = await startJetStream();
  process.env.EXOCLAW_WORK_ACK_WAIT_MS = "2000";
  platform = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as { chat_id: string | number; text: string };
      sends.push({ chat: String(body.chat_id), text: body.text });
      return Response.json({
        ok: true,
        result: {
          message_id: sends.length,
          chat: { id: body.chat_id, type: "private" },
          date: 1746268800,
          text: body.text,
        },
      });
    },
  });
  model = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as Record<string, unknown>;
      const text = lastUserText({ body } as unknown as RecordedRequest);
      modelCalls.push(text);
      const turns = ((body.messages ?? []) as { role: string }[]).filter((m) => m.role === "user").length;
      if (hold(text)) await new Promise<void>((r) => held.push(r));
      return new Response(anthropicReply(`echo: ${text} (turn ${turns})`), {
        headers: { "content-type": "text/event-stream" },
      });
    },
  });
});
afterAll(async () => {
  delete process.env.EXOCLAW_WORK_ACK_WAIT_MS;
  for (const r of held) r();
  await platform?.stop(true);
  await model?.stop(true);
  await js?.[Symbol.asyncDispose]();
});

/** A state directory for one gateway on the namespace `ns`. */
function home(ns: string) {
  const h = tempDir("exoclaw-cluster-");
  writeCredential(h.path, "tg_secret", SECRET);
  writeCredential(h.path, "tg_bot", "987654321:AAE-cluster-token");
  writeCredential(h.path, "agent-main", "sk-ant-test");
  h.file(
    "config.toml",
    `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "http://127.0.0.1:${model.port}"\n\n` +
      `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${platform.port}"]\nconfig = { api_base = "http://127.0.0.1:${platform.port}" }\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\ndm_policy = "open"\nrate_per_minute = 0\n\n` +
      `[store]\nkind = "nats"\nnats_url = "${js.url}"\nnamespace = "${ns}"\n`,
  );
  return h;
}

const update = (n: number, chat: number, text: string) =>
  JSON.stringify({
    update_id: n,
    message: {
      message_id: n,
      from: { id: chat, is_bot: false, first_name: "Ada" },
      chat: { id: chat, type: "private" },
      date: 1636628439,
      text,
    },
  });
const post = (url: string, body: string) =>
  fetch(`${url}/webhook/telegram`, { method: "POST", headers: { "x-telegram-bot-api-secret-token": SECRET }, body });
const sent = (text: string) => sends.filter((s) => s.text.startsWith(`echo: ${text} `));

test("two gateways: 60 webhooks spread over both, each resent to the other, get exactly 60 replies; a chat's conversation continues across them", async () => {
  const ha = home("spread");
  const hb = home("spread");
  await using a = await startTestGateway({ home: ha.path });
  await using b = await startTestGateway({ home: hb.path });
  const gws: TestGateway[] = [a, b];
  // 6 chats × 10 rounds; update n goes to one gateway and is resent to the other (Telegram retries a slow answer).
  for (let round = 0; round < 10; round++) {
    const posts = [];
    for (let chat = 0; chat < 6; chat++) {
      const n = 1000 + round * 6 + chat;
      const body = update(n, 7000 + chat, `spread ${chat}-${round}`);
      posts.push(
        post(gws[n % 2]!.url, body).then(async (r) => [r.status, (await post(gws[(n + 1) % 2]!.url, body)).status]),
      );
    }
    expect(await Promise.all(posts)).toEqual(Array(6).fill([200, 200]));
  }
  await waitFor(async () => sends.filter((s) => s.text.startsWith("echo: spread ")).length >= 60, 30_000);
  await waitFor(async () => (await a.store.countInbound()).pending === 0);
  for (let chat = 0; chat < 6; chat++)
    for (let round = 0; round < 10; round++) expect(sent(`spread ${chat}-${round}`)).toHaveLength(1);
  expect(sends.filter((s) => s.text.startsWith("echo: spread ")).length).toBe(60);
  // One conversation per chat, in order, whichever gateway ran each turn: the model saw every earlier turn.
  for (let round = 0; round < 10; round++)
    expect(sent(`spread 0-${round}`)[0]!.text).toBe(`echo: spread 0-${round} (turn ${round + 1})`);
  const hist = await b.store.history("main:telegram:bot:7000", { limit: 100 });
  expect(hist.filter((m) => m.role === "user").map((m) => (m.parts[0] as { text: string }).text)).toEqual(
    Array.from({ length: 10 }, (_, r) => `spread 0-${r}`),
  );
  // The gateway is ready on the shared store.
  const st = (await (await fetch(`${a.url}/ready`)).json()) as { ready: boolean };
  expect(st.ready).toBe(true);
  ha[Symbol.dispose]();
  hb[Symbol.dispose]();
}, 60_000);

test("a gateway SIGKILLed mid-turn loses nothing: the other gateway answers that message, once", async () => {
  const ha = home("kill");
  const hb = home("kill");
  hold = (t) => t === "killed mid-turn" && !modelCalls.slice(0, -1).includes(t);
  const child = Bun.spawn(["node_modules/.bin/bun", join(import.meta.dir, "../helpers/cluster-gateway.ts")], {
    env: { ...process.env, EXOCLAW_HOME: ha.path },
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = child.stdout.getReader();
  let out = "";
  while (!/listening (\d+)/.test(out)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the child gateway exited: ${out}`);
    out += new TextDecoder().decode(value);
  }
  const port = Number(/listening (\d+)/.exec(out)![1]);
  try {
    expect((await post(`http://127.0.0.1:${port}`, update(2001, 8100, "killed mid-turn"))).status).toBe(200);
    await waitFor(async () => modelCalls.includes("killed mid-turn"));
    // Its turn is running on the child (the model holds it): the child dies like a machine.
    await using b = await startTestGateway({ home: hb.path });
    child.kill("SIGKILL");
    await child.exited;
    await waitFor(async () => sent("killed mid-turn").length === 1, 30_000);
    await waitFor(async () => (await b.store.countInbound()).pending === 0);
    expect(sent("killed mid-turn")).toHaveLength(1);
    expect(modelCalls.filter((t) => t === "killed mid-turn")).toHaveLength(2);
  } finally {
    child.kill("SIGKILL");
    hold = () => false;
    ha[Symbol.dispose]();
    hb[Symbol.dispose]();
  }
}, 60_000);

test("NATS stopped: a webhook gets 503 and /health answers; NATS back: the platform's retry is answered once; peers a.* and > stay in their own sessions", async () => {
  const h = home("down");
  await using gw = await startTestGateway({ home: h.path });
  await js.nodes[0]!.stop();
  try {
    await waitFor(async () => (await fetch(`${gw.url}/ready`)).status === 503);
    expect((await post(gw.url, update(3001, 8200, "while down"))).status).toBe(503);
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  } finally {
    await js.nodes[0]!.start();
  }
  await waitFor(async () => (await fetch(`${gw.url}/ready`)).status === 200);
  await waitFor(async () => (await post(gw.url, update(3001, 8200, "while down"))).status === 200);
  await waitFor(async () => sent("while down").length === 1, 20_000);
  expect(modelCalls.filter((t) => t === "while down")).toHaveLength(1);
  // Hostile peer ids (a Telegram chat id is a number; the http-style ids come from other platforms).
  expect(gw.app.route({ channel: "telegram", account: "bot", peer: "a.*" }).session).toBe("main:telegram:bot:a.*");
  expect(gw.app.route({ channel: "telegram", account: "bot", peer: ">" }).session).toBe("main:telegram:bot:>");
  h[Symbol.dispose]();
}, 60_000);
