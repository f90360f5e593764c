/**
 * The outbox (SPEC §13), end to end: a real gateway, the built-in telegram and slack plugins, and
 * loopback stand-ins for their APIs that refuse in the platforms' real shapes (wire-formats B1.3,
 * B4.5). A failed send is retried from the stored reply, never by asking the model again; it backs
 * off, honours the platform's hint, and a permanent refusal is dead-lettered at once for the
 * operator (`exoclaw status`, `exoclaw inbox list | retry | drop`, real CLI child processes).
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { sse, startFakeUpstream } from "../helpers/fake-upstream.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { SLACK_SIGNING_SECRET as SIGNING, slackHeaders } from "../helpers/signing.ts";
import { tempDir } from "../helpers/temp.ts";

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** A model that calls http_get on `url` (a side effect: an order on a loopback shop), then answers. */
function toolThenAnswer(url: string) {
  let calls = 0;
  const stream: StreamFn = async function* (req) {
    calls++;
    if (req.messages.at(-1)!.role === "user") {
      yield { type: "tool_call", id: `t${calls}`, name: "http_get", input: { url } };
      yield { type: "done", stop_reason: "tool_use" };
      return;
    }
    yield { type: "text", text: "Order placed." };
    yield { type: "done", stop_reason: "end_turn" };
  };
  return { stream, calls: () => calls };
}

interface Send {
  at: number;
  text: string;
  /** Whether the platform accepted it. */
  accepted: boolean;
}

type Kind = "telegram" | "slack";

const accept = (kind: Kind, text: string) =>
  kind === "telegram"
    ? Response.json({
        ok: true,
        result: {
          message_id: 7,
          from: { id: 987654321, is_bot: true, first_name: "Exo" },
          chat: { id: 42, type: "private" },
          date: 1746268800,
          text,
        },
      })
    : Response.json({ ok: true, channel: "D1", ts: "1503435956.000247", message: { text } });

/**
 * A state directory with one channel on a fake platform, a shop the model's tool orders from, and the
 * model. `answer(n)` is the platform's answer to its n-th send (0-based); null accepts it.
 */
function harness(kind: Kind, answer: (n: number) => Response | null) {
  const sends: Send[] = [];
  let orders = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (new URL(req.url).pathname === "/shop/order") return new Response(`order #${++orders}`);
      const text = ((await req.json()) as { text: string }).text;
      const refusal = answer(sends.length);
      sends.push({ at: Date.now(), text, accepted: refusal === null });
      return refusal ?? accept(kind, text);
    },
  });
  const model = toolThenAnswer(`http://127.0.0.1:${server.port}/shop/order`);
  const home = tempDir();
  const base = `http://127.0.0.1:${server.port}`;
  const tool = `[[plugins]]\nname = "http-get"\npath = "builtin:http-get"\nallowed_hosts = ["127.0.0.1:${server.port}"]\n\n`;
  if (kind === "telegram") {
    writeCredential(home.path, "tg_secret", "S3cr3t_token-1");
    writeCredential(home.path, "tg_bot", "987654321:AAE-secret-token");
    home.file(
      "config.toml",
      tool +
        `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${server.port}"]\nconfig = { api_base = "${base}" }\n\n` +
        `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\ndm_policy = "open"\n`,
    );
  } else {
    writeCredential(home.path, "slack_signing", SIGNING);
    writeCredential(home.path, "slack_bot", "xoxb-test-token-1");
    home.file(
      "config.toml",
      tool +
        `[[plugins]]\nname = "slack"\npath = "builtin:slack"\nallowed_hosts = ["127.0.0.1:${server.port}"]\nconfig = { api_base = "${base}" }\n\n` +
        `[channels.slack]\nsecrets = { signing_secret = "slack_signing", bot_token = "slack_bot" }\ndm_policy = "open"\n`,
    );
  }
  return {
    sends,
    model,
    home,
    orders: () => orders,
    accepted: () => sends.filter((s) => s.accepted).map((s) => s.text),
    start: (retryIntervalMs: number) =>
      startTestGateway({ home: home.path, streamFor: () => model.stream, retryIntervalMs }),
    async [Symbol.asyncDispose]() {
      await server.stop(true);
      home[Symbol.dispose]();
    },
  };
}

/** Posts a signed webhook with one DM "order one pizza" (update/event `n`); returns the inbox id. */
async function post(gw: TestGateway, kind: Kind, n: number): Promise<string> {
  let r: Response;
  if (kind === "telegram") {
    const update = JSON.stringify({
      update_id: n,
      message: {
        message_id: n,
        from: { id: 42, is_bot: false, first_name: "Ada" },
        chat: { id: 42, type: "private" },
        date: 1636628439,
        text: "order one pizza",
      },
    });
    r = await fetch(`${gw.url}/webhook/telegram`, {
      method: "POST",
      headers: { "x-telegram-bot-api-secret-token": "S3cr3t_token-1" },
      body: update,
    });
  } else {
    const body = JSON.stringify({
      type: "event_callback",
      team_id: "T1",
      api_app_id: "A1",
      event_id: `Ev${n}`,
      event: { type: "message", channel: "D1", channel_type: "im", user: "U1", text: "order one pizza" },
    });
    r = await fetch(`${gw.url}/webhook/slack`, { method: "POST", headers: slackHeaders(body), body });
  }
  expect(r.status).toBe(200);
  return kind === "telegram" ? `telegram:${n}` : `slack:Ev${n}`;
}

const cli = (gw: { port: number; home: string }, ...args: string[]) =>
  runExoclaw([...args, "--port", String(gw.port)], { EXOCLAW_HOME: gw.home });
const settled = async (gw: TestGateway) => (await gw.store.pendingInbound(10)).length === 0;
const metric = async (gw: TestGateway, series: string) => {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  return Number(new RegExp(`^${series.replace(/[{}"=,]/g, "\\$&")} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
};

const tgRefusal = (status: number, description: string, extra: object = {}) =>
  Response.json({ ok: false, error_code: status, description, ...extra }, { status });

test("telegram answers 500, then 200: the stored reply is delivered once; one model turn, one tool run, one turn in history", async () => {
  await using h = harness("telegram", (n) => (n === 0 ? tgRefusal(500, "Internal Server Error") : null));
  await using gw = await h.start(30);
  await post(gw, "telegram", 9001);
  await until(() => settled(gw), "the retry to deliver");
  expect(h.sends.map((s) => [s.text, s.accepted])).toEqual([
    ["Order placed.", false],
    ["Order placed.", true],
  ]);
  expect([h.model.calls(), h.orders()]).toEqual([2, 1]); // one turn: the tool round and the answer
  expect((await gw.store.history("main:telegram:bot:42", { limit: 50 })).map((m) => m.role)).toEqual([
    "user",
    "assistant",
    "tool",
    "assistant",
  ]);
  expect(await metric(gw, 'exoclaw_channel_deliveries_total{channel="telegram",result="failed"}')).toBe(1);
  expect(await metric(gw, 'exoclaw_channel_deliveries_total{channel="telegram",result="sent"}')).toBe(1);
});

test("the same across a restart: a send that failed before the gateway stopped is delivered by the next one from the stored reply", async () => {
  let down = true;
  await using h = harness("telegram", () => (down ? tgRefusal(502, "Bad Gateway") : null));
  {
    // A first retry far away: this gateway stops with the message pending.
    await using gw = await h.start(60_000);
    const id = await post(gw, "telegram", 9002);
    await until(async () => (await gw.store.getInbound(id))?.attempts === 1, "the failed send");
    expect((await gw.store.getInbound(id))!).toMatchObject({
      reply: "Order placed.",
      dead_at: null,
      last_error: expect.stringContaining("502"),
    });
  }
  down = false;
  await using gw = await h.start(60_000);
  await until(() => settled(gw), "the next start to deliver");
  expect(h.accepted()).toEqual(["Order placed."]);
  expect(h.sends).toHaveLength(2);
  expect([h.model.calls(), h.orders()]).toEqual([2, 1]);
  expect((await gw.store.history("main:telegram:bot:42", { limit: 50 })).map((m) => m.role)).toEqual([
    "user",
    "assistant",
    "tool",
    "assistant",
  ]);
});

test("slack 200 {ok:false, error: ratelimited} with Retry-After: the message stays pending and is retried after the hint, not before", async () => {
  await using h = harness("slack", (n) =>
    n === 0 ? Response.json({ ok: false, error: "ratelimited" }, { headers: { "retry-after": "1" } }) : null,
  );
  // Without the hint the first retry would come after ~30 ms.
  await using gw = await h.start(30);
  const id = await post(gw, "slack", 1);
  await until(async () => (await gw.store.getInbound(id))?.attempts === 1, "the refused send");
  const pending = (await gw.store.getInbound(id))!;
  expect(pending).toMatchObject({
    dead_at: null,
    reply: "Order placed.",
    last_error: expect.stringContaining("ratelimited"),
  });
  expect(pending.next_at).toBeGreaterThanOrEqual(h.sends[0]!.at + 1000);
  await until(() => settled(gw), "the retry after the hint");
  expect(h.sends.map((s) => s.accepted)).toEqual([false, true]);
  expect(h.sends[1]!.at - h.sends[0]!.at).toBeGreaterThanOrEqual(1000);
  expect([h.model.calls(), h.orders()]).toEqual([2, 1]);
});

test("telegram 429 {parameters: {retry_after: 2}}: pending, retried after 2 s from the stored reply", async () => {
  await using h = harness("telegram", (n) =>
    n === 0 ? tgRefusal(429, "Too Many Requests: retry after 2", { parameters: { retry_after: 2 } }) : null,
  );
  await using gw = await h.start(30);
  const id = await post(gw, "telegram", 9003);
  await until(async () => (await gw.store.getInbound(id))?.attempts === 1, "the refused send");
  expect((await gw.store.getInbound(id))!).toMatchObject({ dead_at: null, last_error: expect.stringContaining("429") });
  await until(() => settled(gw), "the retry after the hint");
  expect(h.accepted()).toEqual(["Order placed."]);
  expect(h.sends[1]!.at - h.sends[0]!.at).toBeGreaterThanOrEqual(2000);
  expect([h.model.calls(), h.orders()]).toEqual([2, 1]);
});

test("slack ok:false not_in_channel is permanent: dead-lettered after one send", async () => {
  await using h = harness("slack", () => Response.json({ ok: false, error: "not_in_channel" }));
  await using gw = await h.start(30);
  const id = await post(gw, "slack", 2);
  await until(async () => (await gw.store.getInbound(id))?.dead_at != null, "the dead letter");
  expect((await gw.store.getInbound(id))!).toMatchObject({
    attempts: 1,
    last_error: expect.stringContaining("not_in_channel"),
  });
  expect(h.sends).toHaveLength(1);
});

test("telegram 403 (bot blocked) is dead-lettered at once, shown by `status` and `inbox list`; `inbox retry` delivers it once the platform accepts; `inbox drop` gives one up", async () => {
  let blocked = true;
  await using h = harness("telegram", () =>
    blocked ? tgRefusal(403, "Forbidden: bot was blocked by the user") : null,
  );
  await using gw = await h.start(30);
  const first = await post(gw, "telegram", 9004);
  const second = await post(gw, "telegram", 9005);
  await until(async () => (await gw.store.countInbound()).dead === 2, "two dead letters");
  expect(h.sends).toHaveLength(2); // one attempt each, no retry
  expect(h.model.calls()).toBe(4); // two turns, each asked once

  const status = await cli(gw, "status");
  expect(status.code).toBe(0);
  expect(status.stdout).toContain("0 message(s) pending, 2 dead-lettered — see `exoclaw inbox list`");
  const list = await cli(gw, "inbox", "list");
  expect(list.code).toBe(0);
  expect(list.stdout).toContain("DEAD-LETTERED");
  expect(list.stdout).toContain(`${first}  telegram peer 42  1 attempt(s), DEAD since`);
  expect(list.stdout).toContain("last error: HTTP 403: Forbidden: bot was blocked by the user");
  expect(list.stdout).toContain('message:    "order one pizza"');
  const json = JSON.parse((await cli(gw, "inbox", "list", "--json")).stdout) as {
    messages: { id: string; state: string; reply_stored: boolean }[];
  };
  expect(json.messages.map((m) => [m.id, m.state, m.reply_stored])).toEqual([
    [first, "dead", true],
    [second, "dead", true],
  ]);
  expect(await metric(gw, 'exoclaw_channel_deliveries_total{channel="telegram",result="dead_lettered"}')).toBe(2);
  expect(await metric(gw, "exoclaw_channel_outbox_dead")).toBe(2);

  // The person unblocked the bot: the stored reply goes out, and the model is not asked again.
  blocked = false;
  const retry = await cli(gw, "inbox", "retry", first);
  expect(retry.stdout.trim()).toBe(`delivered ${first}`);
  expect(retry.code).toBe(0);
  expect(h.accepted()).toEqual(["Order placed."]);
  expect(h.model.calls()).toBe(4);
  expect(await gw.store.getInbound(first)).toBeNull();

  const drop = await cli(gw, "inbox", "drop", second);
  expect(drop.stdout.trim()).toBe(`dropped ${second} (telegram peer 42): it will not be sent`);
  expect(drop.code).toBe(0);
  expect((await cli(gw, "inbox", "list")).stdout.trim()).toBe("the inbox is empty: every channel message was answered");
  expect(h.accepted()).toEqual(["Order placed."]);
  const again = await cli(gw, "inbox", "drop", second);
  expect([again.code, again.stderr.trim()]).toEqual([
    1,
    `exoclaw: gateway: no message ${second} waiting in the inbox (see \`exoclaw inbox list\`)`,
  ]);
  expect((await cli(gw, "status")).stdout).toContain("0 message(s) pending, 0 dead-lettered\n");
  await until(async () => (await metric(gw, "exoclaw_channel_outbox_dead")) === 0, "the gauge to follow");
});

test("without a gateway, `inbox` works on the store: list, and a retry re-queued there is delivered when the gateway starts", async () => {
  let blocked = true;
  await using h = harness("telegram", () => (blocked ? tgRefusal(400, "Bad Request: chat not found") : null));
  let port = 0;
  let id = "";
  {
    await using gw = await h.start(30);
    port = gw.port;
    id = await post(gw, "telegram", 9006);
    await until(async () => (await gw.store.getInbound(id))?.dead_at != null, "the dead letter");
  }
  const offline = { port, home: h.home.path };
  const list = await cli(offline, "inbox", "list", "--dead");
  expect(list.code).toBe(0);
  expect(list.stdout).toContain(`${id}  telegram peer 42  1 attempt(s), DEAD since`);
  expect(list.stdout).toContain("Bad Request: chat not found");
  const retry = await cli(offline, "inbox", "retry", id);
  expect([retry.code, retry.stdout.trim()]).toEqual([
    0,
    `re-queued ${id}: no gateway is running; it is delivered when \`exoclaw gateway\` starts`,
  ]);
  const unknown = await cli(offline, "inbox", "retry", "telegram:1");
  expect([unknown.code, unknown.stderr.trim()]).toEqual([
    1,
    "exoclaw: no message telegram:1 waiting in the inbox (see `exoclaw inbox list`)",
  ]);
  blocked = false;
  await using gw = await h.start(30);
  await until(() => settled(gw), "the start to deliver the re-queued message");
  expect(h.accepted()).toEqual(["Order placed."]);
  expect(h.model.calls()).toBe(2);
});

test("a crash right after the turn's history is written: the next start sends the stored reply; the model is asked once, the history holds the turn once", async () => {
  // The crash point the outbox must survive: the history and the reply land in one transaction, so
  // no restart can find the turn in the history without its reply (and run it a second time).
  // OpenAI's Chat Completions stream (wire-formats A2).
  await using up = startFakeUpstream(() => ({
    headers: { "content-type": "text/event-stream" },
    body: sse([
      { choices: [{ index: 0, delta: { role: "assistant", content: "Order placed." }, finish_reason: null }] },
      { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
      { choices: [], usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 } },
      "[DONE]",
    ]),
  }));
  await using h = harness("telegram", () => null);
  h.home.file(
    "config.toml",
    readFileSync(join(h.home.path, "config.toml"), "utf8") +
      `\n[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\nbase_url = "${up.url}"\n`,
  );
  writeCredential(h.home.path, "openai", "sk-test-key");
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "../helpers/crash-gateway.ts")], {
    env: { ...process.env, EXOCLAW_HOME: h.home.path },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const reader = child.stdout.getReader();
  while (!/listening (\d+)/.test(out)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the crashing gateway did not start: ${await new Response(child.stderr).text()}`);
    out += new TextDecoder().decode(value);
  }
  const port = Number(/listening (\d+)/.exec(out)![1]);
  await post({ url: `http://127.0.0.1:${port}` } as TestGateway, "telegram", 9100);
  expect(await child.exited).not.toBe(0);
  expect(child.signalCode).toBe("SIGKILL");
  expect(up.requests).toHaveLength(1);
  expect(h.sends).toHaveLength(0); // it died before sending

  await using gw = await h.start(60_000);
  await until(() => settled(gw), "the next start to deliver the stored reply");
  expect(h.accepted()).toEqual(["Order placed."]);
  expect(up.requests).toHaveLength(1);
  expect(
    (await gw.store.history("main:telegram:bot:42", { limit: 50 })).map((m) => [
      m.role,
      (m.parts[0] as { text: string }).text,
    ]),
  ).toEqual([
    ["user", "order one pizza"],
    ["assistant", "Order placed."],
  ]);
});

test("a turn that fails after the model said something is retried: the reply is sent once, the history holds the turn once", async () => {
  await using h = harness("telegram", () => null);
  const { ProviderError } = await import("../../src/agent/provider-error.ts");
  let calls = 0;
  // The first attempt streams a few words, then the provider drops the connection; the retry answers.
  const partial: StreamFn = async function* () {
    calls++;
    if (calls === 1) {
      yield { type: "text", text: "Let me see, a pizza…" };
      yield {
        type: "error",
        error: new ProviderError("openai", "openai: the connection closed mid-stream", { retryable: false }),
      };
      return;
    }
    yield { type: "text", text: "One pizza is on its way." };
    yield { type: "done", stop_reason: "end_turn" };
  };
  await using gw = await startTestGateway({ home: h.home.path, streamFor: () => partial, retryIntervalMs: 30 });
  await post(gw, "telegram", 900);
  await until(async () => h.sends.length > 0 && (await settled(gw)), "the retried reply");
  expect(h.accepted()).toEqual(["One pizza is on its way."]);
  expect(calls).toBe(2);
  const history = await gw.store.history("main:telegram:bot:42", { limit: 50 });
  expect(history.map((m) => [m.role, m.parts.map((p) => ("text" in p ? p.text : p.type)).join("")])).toEqual([
    ["user", "order one pizza"],
    ["assistant", "One pizza is on its way."],
  ]);
});

test("a turn refused by the store (no provider error) is retried, and the inbox and log say why", async () => {
  await using h = harness("telegram", () => null);
  const { StoreError } = await import("../../src/store/index.ts");
  let calls = 0;
  // What the metering decorator yields when the usage ledger cannot be written.
  const refusing: StreamFn = async function* () {
    calls++;
    if (calls === 1) {
      yield { type: "refused", error: new StoreError("cannot reserve usage on the nats store: no leader") };
      return;
    }
    yield { type: "text", text: "One pizza is on its way." };
    yield { type: "done", stop_reason: "end_turn" };
  };
  await using gw = await startTestGateway({ home: h.home.path, streamFor: () => refusing, retryIntervalMs: 60_000 });
  const id = await post(gw, "telegram", 901);
  await until(async () => (await gw.store.getInbound(id))?.attempts === 1, "the failed attempt");
  expect((await gw.store.getInbound(id))!.last_error).toContain("cannot reserve usage on the nats store: no leader");
  expect(gw.logs.some((l) => l.includes("the turn ended: error (cannot reserve usage"))).toBe(true);
  expect(h.sends).toEqual([]);
});
