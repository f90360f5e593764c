/**
 * Channel messages with `--workers 2` (issue 13), through the compiled binary and the built-in
 * Telegram plugin: a platform retry of the same update is answered once (dedupe), and replies whose
 * first send failed are retried by the outbox of both workers — each message is sent exactly once
 * more, never by both (the store's claim).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startFakeUpstream } from "../helpers/fake-upstream.ts";
import {
  type BinaryGateway,
  binaryHome,
  NATIVE,
  nativeBinary,
  runBinary,
  startBinaryGateway,
  until,
} from "../helpers/binary.ts";
import { anthropicReply, lastUserText } from "../e2e/binary/_replies.ts";

const TOKEN = "workers-channels-token";
const SECRETS = { telegram_webhook_secret: "S3cr3t_token-1", telegram_bot_token: "987654321:AAE-workers-bot-token" };
const update = (n: number) =>
  JSON.stringify({
    update_id: 700_000 + n,
    message: {
      message_id: 100 + n,
      from: { id: 5000 + (n % 4), is_bot: false, first_name: "Ada" },
      chat: { id: 5000 + (n % 4), type: "private" },
      date: 1636628439,
      text: `hello ${n}`,
    },
  });

describe.if(NATIVE !== undefined)("channel messages on two workers", () => {
  const home = binaryHome();
  const model = startFakeUpstream((req) => ({ body: anthropicReply(`echo: ${lastUserText(req)}`) }));
  /** Every sendMessage the platform got: its text and whether it was accepted. */
  const sends: { text: string; ok: boolean }[] = [];
  // The first send of each reply fails with a 500 (the platform is down for a moment): it is retried.
  const failedOnce = new Set<string>();
  const platform = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as { text: string };
      if (!failedOnce.has(body.text)) {
        failedOnce.add(body.text);
        sends.push({ text: body.text, ok: false });
        return Response.json({ ok: false, error_code: 500, description: "Internal Server Error" }, { status: 500 });
      }
      sends.push({ text: body.text, ok: true });
      return Response.json({ ok: true, result: { message_id: 42 } });
    },
  });
  const api = `127.0.0.1:${platform.port}`;
  let gw: BinaryGateway;

  beforeAll(async () => {
    await nativeBinary();
    for (const [name, value] of Object.entries(SECRETS))
      expect((await runBinary(home, ["secret", "set", name], { stdin: value })).stderr).toBe("");
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "${model.url}"\n\n` +
        `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["${api}"]\nconfig = { api_base = "http://${api}" }\n\n` +
        `[channels.telegram]\nsecrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }\ndm_policy = "open"\nrate_per_minute = 0\n`,
    );
    gw = await startBinaryGateway(home, { args: ["--workers", "2"], env: { EXOCLAW_TOKEN: TOKEN } });
    await gw.waitForLog((l) => l.msg === "workers ready");
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await platform.stop(true);
    await model[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });

  test("each of 12 messages is answered by one turn and its failed reply re-sent exactly once, by one of the workers", async () => {
    const post = (n: number) =>
      fetch(`${gw.url}/webhook/telegram`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-telegram-bot-api-secret-token": SECRETS.telegram_webhook_secret,
        },
        body: update(n),
      });
    const posted = await Promise.all(Array.from({ length: 12 }, (_, n) => post(n)));
    expect(posted.map((r) => r.status)).toEqual(Array(12).fill(200));
    // Telegram retried every update (it does when an answer is slow): stored once, so no second turn.
    expect((await Promise.all(Array.from({ length: 12 }, (_, n) => post(n)))).map((r) => r.status)).toEqual(
      Array(12).fill(200),
    );
    const texts = Array.from({ length: 12 }, (_, n) => `echo: hello ${n}`);
    // The first retry is due about 5 s after the failure (±20 %), on both workers' retry loops.
    await until(
      "every reply sent",
      () => (texts.every((t) => sends.some((s) => s.ok && s.text === t)) ? true : undefined),
      30_000,
    );
    // Both workers' loops wake for the same due messages: give a second sender every chance to show.
    await until("the inbox empty", async () => {
      const r = await runBinary(home, ["status", "--json", "--port", String(gw.port), "--token", TOKEN]);
      const s = JSON.parse(r.stdout) as { inbound: { pending: number; dead: number } };
      return s.inbound.pending === 0 && s.inbound.dead === 0 ? true : undefined;
    });
    for (const t of texts)
      expect(sends.filter((s) => s.text === t)).toEqual([
        { text: t, ok: false },
        { text: t, ok: true },
      ]);
    // One turn per message: the retries sent the stored reply, and the platform's repeats made none.
    expect(model.requests.map((r) => lastUserText(r)).sort()).toEqual(
      Array.from({ length: 12 }, (_, n) => `hello ${n}`).sort(),
    );
  }, 60_000);
});
