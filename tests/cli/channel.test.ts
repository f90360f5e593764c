/** `exoclaw channel setup`: Telegram's setWebhook against a loopback stand-in speaking the Bot API (wire-formats B1.1). */
import { expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { readCredential, writeCredential } from "../../src/config/index.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

const TOKEN = "987654321:AAE-secret-token";

/** A stand-in for api.telegram.org: records each call; answers with `answer(method)` or Telegram's success shapes. */
function fakeTelegram(answer?: (method: string) => unknown) {
  const calls: { path: string; body: any }[] = [];
  let webhook = "";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const body = (await req.json().catch(() => null)) as any;
      calls.push({ path, body });
      const method = path.split("/").at(-1)!;
      const custom = answer?.(method);
      if (custom) return Response.json(custom, { status: (custom as { error_code?: number }).error_code ?? 200 });
      if (method === "setWebhook") {
        webhook = body.url;
        return Response.json({ ok: true, result: true, description: "Webhook was set" });
      }
      return Response.json({
        ok: true,
        result: {
          url: webhook,
          has_custom_certificate: false,
          pending_update_count: 3,
          last_error_date: 1700000000,
          last_error_message: "Connection refused",
          max_connections: 40,
          allowed_updates: ["message", "edited_message"],
        },
      });
    },
  });
  return { calls, base: `http://127.0.0.1:${server.port}`, [Symbol.dispose]: () => void server.stop(true) };
}

function telegramHome(base: string, gateway = '[gateway]\npublic_url = "https://bot.example.com"\n\n') {
  const home = tempDir();
  home.file(
    "config.toml",
    gateway +
      `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["${base.slice(7)}"]\nconfig = { api_base = "${base}" }\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }\n`,
  );
  writeCredential(home.path, "telegram_bot_token", TOKEN);
  return home;
}

test("channel setup telegram: generates and stores a webhook secret, registers <public_url>/webhook/telegram with it, and shows Telegram's view", async () => {
  using api = fakeTelegram();
  using home = telegramHome(api.base);
  const r = await runExoclaw(["channel", "setup", "telegram"], { EXOCLAW_HOME: home.path });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const secret = readCredential(home.path, "telegram_webhook_secret")!;
  expect(secret).toMatch(/^[A-Za-z0-9_-]{32,256}$/);
  expect(statSync(join(home.path, "credentials/telegram_webhook_secret.key")).mode & 0o777).toBe(0o600);
  expect(api.calls).toEqual([
    {
      path: `/bot${TOKEN}/setWebhook`,
      body: {
        url: "https://bot.example.com/webhook/telegram",
        secret_token: secret,
        allowed_updates: ["message", "edited_message"],
      },
    },
    { path: `/bot${TOKEN}/getWebhookInfo`, body: {} },
  ]);
  expect(r.stdout).toContain(
    `generated a webhook secret and stored it as telegram_webhook_secret (${home.path}/credentials/telegram_webhook_secret.key, mode 600)`,
  );
  expect(r.stdout).toContain("telegram reports: url https://bot.example.com/webhook/telegram, pending updates 3");
  expect(r.stdout).toContain("last delivery error: Connection refused (2023-11-14T22:13:20.000Z)");
  expect(r.stdout).not.toContain("AAE-secret-token");
  expect(r.stdout).not.toContain(secret);

  // Run again: the stored secret is reused, not replaced (a running gateway keeps accepting Telegram's requests).
  const again = await runExoclaw(["channel", "setup", "telegram", "--url", "https://other.example.com/"], {
    EXOCLAW_HOME: home.path,
  });
  expect(again.code).toBe(0);
  expect(again.stdout).not.toContain("generated");
  expect(readCredential(home.path, "telegram_webhook_secret")).toBe(secret);
  expect(api.calls[2]!.body).toMatchObject({ url: "https://other.example.com/webhook/telegram", secret_token: secret });
});

test("a wrong bot token: Telegram's description and the fix, exit 1, and the token nowhere in the output", async () => {
  using api = fakeTelegram(() => ({ ok: false, error_code: 401, description: "Unauthorized" }));
  using home = telegramHome(api.base);
  writeCredential(home.path, "telegram_webhook_secret", "S3cr3t_token-1");
  const r = await runExoclaw(["channel", "setup", "telegram"], { EXOCLAW_HOME: home.path });
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(
    "exoclaw: telegram setWebhook: Unauthorized (error 401): the bot token is wrong; set the one from @BotFather: exoclaw secret set telegram_bot_token\n",
  );
  expect(r.stdout + r.stderr).not.toContain("AAE-secret-token");
  expect(api.calls).toHaveLength(1);
});

test("an unreachable API base is an error that shows neither the token nor a stack", async () => {
  using api = fakeTelegram();
  using home = telegramHome("http://127.0.0.1:1");
  const r = await runExoclaw(["channel", "setup", "telegram"], { EXOCLAW_HOME: home.path });
  expect(r.code).toBe(1);
  expect(r.stderr).toStartWith("exoclaw: telegram setWebhook: cannot reach http://127.0.0.1:1 (");
  expect(r.stderr).not.toContain("AAE-secret-token");
  expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(api.calls).toHaveLength(0);
});

test("without public_url or --url: exit 1 and how to set it; nothing is sent", async () => {
  using api = fakeTelegram();
  using home = telegramHome(api.base, "");
  const r = await runExoclaw(["channel", "setup", "telegram"], { EXOCLAW_HOME: home.path });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(
    `set public_url = "https://bot.example.com" (the address your reverse proxy serves) under [gateway] in ${home.path}/config.toml, or pass --url`,
  );
  expect(api.calls).toHaveLength(0);
  const bad = await runExoclaw(["channel", "setup", "telegram", "--url", "https://bot.example.com/webhook/telegram"], {
    EXOCLAW_HOME: home.path,
  });
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("--url: expected the gateway's public origin");
});

test("a missing bot token says which secret to set; nothing is sent and no secret is generated", async () => {
  using api = fakeTelegram();
  using home = telegramHome(api.base);
  home.file("credentials/telegram_bot_token.key", "\n");
  const r = await runExoclaw(["channel", "setup", "telegram"], { EXOCLAW_HOME: home.path });
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(
    "exoclaw: credential telegram_bot_token (the bot token from @BotFather) is missing: exoclaw secret set telegram_bot_token\n",
  );
  expect(readCredential(home.path, "telegram_webhook_secret")).toBeNull();
  expect(api.calls).toHaveLength(0);
});

test("slack, discord, whatsapp: the URL to paste into the platform's console and the credentials the channel needs", async () => {
  using home = tempDir();
  home.file(
    "config.toml",
    '[gateway]\npublic_url = "https://bot.example.com"\n\n' +
      '[channels.slack]\nsecrets = { signing_secret = "slack_signing_secret", bot_token = "slack_bot_token" }\n\n' +
      "[channels.discord]\nsecrets = {}\n\n" +
      '[channels.whatsapp]\nsecrets = { app_secret = "wa_app_secret", verify_token = "wa_verify", access_token = "wa_token" }\n',
  );
  writeCredential(home.path, "slack_signing_secret", "sign");
  const env = { EXOCLAW_HOME: home.path };
  const slack = await runExoclaw(["channel", "setup", "slack"], env);
  expect(slack.code).toBe(0);
  expect(slack.stdout).toContain("Event Subscriptions → Request URL");
  expect(slack.stdout).toContain("\n  https://bot.example.com/webhook/slack\n");
  expect(slack.stdout).toContain("  signing_secret: credential slack_signing_secret, set\n");
  expect(slack.stdout).toContain(
    "  bot_token: credential slack_bot_token, missing: exoclaw secret set slack_bot_token\n",
  );
  expect(slack.stdout).not.toContain("sign\n");

  const discord = await runExoclaw(["channel", "setup", "discord", "--url", "https://d.example.com"], env);
  expect(discord.code).toBe(0);
  expect(discord.stdout).toContain("Interactions Endpoint URL");
  expect(discord.stdout).toContain("  https://d.example.com/webhook/discord\n");
  expect(discord.stdout).toContain(
    '  public_key: not mapped: add public_key = "discord_public_key" to secrets under [channels.discord]',
  );

  const wa = await runExoclaw(["channel", "setup", "whatsapp"], env);
  expect(wa.code).toBe(0);
  expect(wa.stdout).toContain("Callback URL");
  expect(wa.stdout).toContain("Verify token set to the value of credential wa_verify");
});

test("an unknown channel: exit 1 listing the configured ones", async () => {
  using home = tempDir();
  home.file(
    "config.toml",
    '[gateway]\npublic_url = "https://bot.example.com"\n\n[channels.http]\n\n[channels.slack]\n',
  );
  const r = await runExoclaw(["channel", "setup", "telegram"], { EXOCLAW_HOME: home.path });
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(
    `exoclaw: no channel "telegram" in ${home.path}/config.toml; configured channels: http, slack\n`,
  );
  using empty = tempDir();
  const none = await runExoclaw(["channel", "setup", "telegram"], { EXOCLAW_HOME: empty.path });
  expect(none.code).toBe(1);
  expect(none.stderr).toContain("configured channels: none (add a [channels.telegram] table");
});
