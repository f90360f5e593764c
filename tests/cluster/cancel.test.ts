/**
 * `chat.cancel {session}` across gateways on one NATS (issue 14): a turn running on gateway B — its
 * model call held open by a fake Anthropic API on loopback — is cancelled by a chat.cancel sent to
 * gateway A: the turn ends `cancelled` on B, its upstream request is aborted, the count covers the
 * cluster. A hostile session id (`>`, `*`, `a.*`) cancels nothing else; a caller without the token
 * cannot cancel; a channel message's turn cancelled this way is done: stored once, nothing sent,
 * never run again.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { writeCredential } from "../../src/config/index.ts";
import { anthropicReply, lastUserText } from "../e2e/binary/_replies.ts";
import { type FakeUpstream, startFakeUpstream } from "../helpers/fake-upstream.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startJetStream, waitFor, type JsServers } from "../helpers/jetstream.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket, type TestSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
const SECRET = "S3cr3t_token-1";
let js: JsServers;
let upstream: FakeUpstream;
const sends: { chat: string; text: string }[] = [];
let platform: ReturnType<typeof Bun.serve>;

/** A turn whose text starts with `hold` gets its first words, then the stream stays open. */
const held = (text: string) => {
  const body = anthropicReply(`partial answer to ${text}`);
  return {
    body,
    hangAfterBytes: new TextEncoder().encode(body.slice(0, body.indexOf("event: content_block_stop"))).length,
  };
};

beforeAll(async () => {
  js = await startJetStream();
  upstream = startFakeUpstream((req) => {
    const text = lastUserText(req);
    return text.startsWith("hold") ? held(text) : { body: anthropicReply(`echo: ${text}`) };
  });
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
});
afterAll(async () => {
  await platform?.stop(true);
  await upstream?.[Symbol.asyncDispose]();
  await js?.[Symbol.asyncDispose]();
});

/** A state directory for one gateway of the cluster `ns` (the nats store; Telegram through the fake platform). */
function home(ns: string) {
  const h = tempDir("exoclaw-cancel-");
  writeCredential(h.path, "tg_secret", SECRET);
  writeCredential(h.path, "tg_bot", "987654321:AAE-cluster-token");
  writeCredential(h.path, "agent-main", "sk-ant-test");
  h.file(
    "config.toml",
    `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "${upstream.url}"\n\n` +
      `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${platform.port}"]\nconfig = { api_base = "http://127.0.0.1:${platform.port}" }\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\ndm_policy = "open"\nrate_per_minute = 0\n\n` +
      `[store]\nkind = "nats"\nnats_url = "${js.url}"\nnamespace = "${ns}"\n`,
  );
  return h;
}

/** Two gateways of one cluster, each with a socket. */
async function pair(ns: string, token?: string) {
  const ha = home(ns);
  const hb = home(ns);
  const a = await startTestGateway({ home: ha.path, ...(token && { token }) });
  const b = await startTestGateway({ home: hb.path, ...(token && { token }) });
  const headers = token ? { headers: { authorization: `Bearer ${token}` } } : undefined;
  const wsA = await openSocket(a.wsUrl, headers);
  const wsB = await openSocket(b.wsUrl, headers);
  // Both gateways' heartbeats are up, so a cancel knows whom to wait for.
  await waitFor(async () => {
    const st = ((await wsA.call("status", {})) as Msg).result;
    return (st.cluster?.gateways?.length ?? 0) === 2;
  });
  return {
    a,
    b,
    wsA,
    wsB,
    async [Symbol.asyncDispose]() {
      await wsA[Symbol.asyncDispose]();
      await wsB[Symbol.asyncDispose]();
      await a[Symbol.asyncDispose]();
      await b[Symbol.asyncDispose]();
      ha[Symbol.dispose]();
      hb[Symbol.dispose]();
    },
  };
}

const requestFor = (text: string) => upstream.requests.find((r) => lastUserText(r) === text);

/** Starts a held turn on `ws` and resolves once its first text arrived (the model's stream is open), with its result to come. */
async function holdTurn(ws: TestSocket, id: string, peer: string): Promise<{ done: Promise<Msg> }> {
  const done = ws.call("chat.send", { content: `hold ${id}`, peer }, id) as Promise<Msg>;
  await ws.next((r) => {
    const m = r.value as Msg;
    return m.method === "chat.event" && m.params.id === id && m.params.event === "text";
  });
  return { done };
}

test("a turn running on gateway B is cancelled by chat.cancel {session} sent to gateway A: it ends cancelled on B, its upstream request aborted", async () => {
  await using c = await pair("cxws");
  const turn = await holdTurn(c.wsB, "b1", "ada");
  const session = "main:ws:local:ada";
  expect(((await c.wsA.call("chat.cancel", { session })) as Msg).result).toEqual({ cancelled: 1 });
  const r = await turn.done;
  expect(r.result.stop_reason).toBe("cancelled");
  expect(r.result.text).toBe("partial answer to hold b1");
  await waitFor(async () => requestFor("hold b1")!.aborted);
  // Stored once, on the shared store, marked cancelled; read through A.
  const hist = ((await c.wsA.call("chat.history", { session })) as Msg).result.messages as Msg[];
  expect(hist.map((m) => m.role)).toEqual(["user", "assistant"]);
  expect(hist[1]!.meta.stop_reason).toBe("cancelled");
  // Nothing is left to cancel, and the session takes the next turn normally.
  expect(((await c.wsA.call("chat.cancel", { session })) as Msg).result).toEqual({ cancelled: 0 });
  const next = (await c.wsA.call("chat.send", { content: "after the cancel", peer: "ada" }, "a1")) as Msg;
  expect(next.result).toMatchObject({ text: "echo: after the cancel", stop_reason: "end_turn" });
}, 60_000);

test("a hostile session id (`>`, `*`, `a.*` against `a.b`) cancels no other session's turn", async () => {
  await using c = await pair("cxhostile");
  const dotted = await holdTurn(c.wsB, "h1", "a.b");
  const starred = await holdTurn(c.wsB, "h2", "a.*");
  for (const session of [">", "*", "main:ws:local:>", "main:ws:local:*", "main:ws:local:a", "main.ws.local.a.b"])
    expect([session, ((await c.wsA.call("chat.cancel", { session })) as Msg).result]).toEqual([
      session,
      { cancelled: 0 },
    ]);
  // A message forged on NATS itself, naming a.b in its body on another session's subject, is not acted
  // on (a.b is cancelled by the last call below, so it was still running); it is published before the
  // chat.cancel below on the same server, so it reached the gateways first.
  const nc = await connect({ servers: js.url });
  nc.publish(
    "cxhostile.cancel.main=3Aws=3Alocal=3Ax",
    JSON.stringify({ session: "main:ws:local:a.b", reply: "cxhostile.cancelled.forged" }),
  );
  await nc.flush();
  await nc.close();
  expect(((await c.wsA.call("chat.cancel", { session: "main:ws:local:a.*" })) as Msg).result).toEqual({ cancelled: 1 });
  expect((await starred.done).result.stop_reason).toBe("cancelled");
  await waitFor(async () => requestFor("hold h2")!.aborted);
  // The other one was never touched: still streaming, until it is named itself.
  expect(requestFor("hold h1")!.aborted).toBe(false);
  expect(((await c.wsA.call("chat.cancel", { session: "main:ws:local:a.b" })) as Msg).result).toEqual({ cancelled: 1 });
  expect((await dotted.done).result.stop_reason).toBe("cancelled");
}, 60_000);

test("a caller without the token cannot cancel: -32001, the turn runs on", async () => {
  await using c = await pair("cxauth", "cancel-token-1");
  const turn = await holdTurn(c.wsB, "t1", "bob");
  await using stranger = await openSocket(c.a.wsUrl);
  const denied = (await stranger.call("chat.cancel", { session: "main:ws:local:bob" })) as Msg;
  expect(denied.error.code).toBe(-32001);
  expect(requestFor("hold t1")!.aborted).toBe(false);
  // The operator's connection can: the turn was still running.
  expect(((await c.wsA.call("chat.cancel", { session: "main:ws:local:bob" })) as Msg).result).toEqual({ cancelled: 1 });
  expect((await turn.done).result.stop_reason).toBe("cancelled");
}, 60_000);

test("a channel message's turn cancelled from a gateway is done: stored once as cancelled, nothing sent, never run again", async () => {
  await using c = await pair("cxchannel");
  const update = (n: number, text: string) =>
    JSON.stringify({
      update_id: n,
      message: {
        message_id: n,
        from: { id: 4242, is_bot: false, first_name: "Ada" },
        chat: { id: 4242, type: "private" },
        date: 1636628439,
        text,
      },
    });
  const post = (url: string, body: string) =>
    fetch(`${url}/webhook/telegram`, { method: "POST", headers: { "x-telegram-bot-api-secret-token": SECRET }, body });
  const stalled = upstream.stalled;
  expect((await post(c.b.url, update(1, "hold channel"))).status).toBe(200);
  // The model's first words were sent and its stream stays open.
  await waitFor(async () => upstream.stalled > stalled);
  const session = "main:telegram:bot:4242";
  // Sent to A, whichever gateway pulled the message.
  expect(((await c.wsA.call("chat.cancel", { session })) as Msg).result).toEqual({ cancelled: 1 });
  await waitFor(async () => requestFor("hold channel")!.aborted);
  // The session's next message is answered: the cancelled one was finished (acknowledged), not redelivered first.
  expect((await post(c.a.url, update(2, "next one"))).status).toBe(200);
  await waitFor(async () => sends.some((s) => s.text === "echo: next one"));
  expect(sends.filter((s) => s.chat === "4242").map((s) => s.text)).toEqual(["echo: next one"]);
  expect(upstream.requests.filter((r) => lastUserText(r) === "hold channel")).toHaveLength(1);
  await waitFor(async () => (await c.a.store.countInbound()).pending === 0);
  const hist = await c.a.store.history(session, { limit: 10 });
  expect(hist.filter((m) => m.role === "user").map((m) => (m.parts[0] as { text: string }).text)).toEqual([
    "hold channel",
    "next one",
  ]);
  expect(hist.find((m) => m.role === "assistant")!.meta?.stop_reason).toBe("cancelled");
}, 60_000);

test("with `[bus] nats_url` and another store (no work queue), a cancel sent to A still reaches B's turn", async () => {
  const config = (h: ReturnType<typeof tempDir>) => {
    writeCredential(h.path, "agent-main", "sk-ant-test");
    h.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "${upstream.url}"\n\n` +
        `[bus]\nnats_url = "${js.url}"\n\n[store]\nkind = "memory"\nnamespace = "cxbus"\n`,
    );
    return h;
  };
  using ha = config(tempDir("exoclaw-cancel-"));
  using hb = config(tempDir("exoclaw-cancel-"));
  await using a = await startTestGateway({ home: ha.path });
  await using b = await startTestGateway({ home: hb.path });
  await using wsA = await openSocket(a.wsUrl);
  await using wsB = await openSocket(b.wsUrl);
  // Both buses are on NATS (they connect in the background).
  for (const ws of [wsA, wsB])
    await waitFor(async () => ((await ws.call("status", {})) as Msg).result.bus.mode === "nats");
  const turn = await holdTurn(wsB, "bus1", "cy");
  expect(((await wsA.call("chat.cancel", { session: "main:ws:local:cy" })) as Msg).result).toEqual({ cancelled: 1 });
  expect((await turn.done).result.stop_reason).toBe("cancelled");
  await waitFor(async () => requestFor("hold bus1")!.aborted);
}, 60_000);
