/**
 * A telegram channel for gateway tests: a loopback stand-in for api.telegram.org that answers
 * sendMessage in the Bot API's shape (wire-formats B1.3) and keeps what it was sent, a state directory
 * with the built-in telegram plugin pointed at it (webhook secret and bot token as credentials), a
 * poster of Updates with the webhook's secret header, and the `exoclaw_channel_refused_total` count.
 * Shared by the pairing, stranger-flood and web page tests.
 */
import { writeCredential } from "../../src/config/index.ts";
import { type TempDir, tempDir } from "./temp.ts";

export const TELEGRAM_BOT = { id: 987654321, is_bot: true, first_name: "Exo", username: "exo_bot" };
/** The webhook secret the state directory configures (sent as `X-Telegram-Bot-Api-Secret-Token`). */
export const TELEGRAM_SECRET = "S3cr3t_token-1";

export interface FakeBotApi extends AsyncDisposable {
  port: number;
  /** Every sendMessage body received, in order. */
  sent: { chat_id: number; text: string }[];
}

/** The fake Bot API: every request is taken as sendMessage and answered with the sent Message. */
export function fakeBotApi(): FakeBotApi {
  const sent: FakeBotApi["sent"] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as { chat_id: number; text: string };
      sent.push(body);
      return Response.json({
        ok: true,
        result: {
          message_id: 100 + sent.length,
          from: TELEGRAM_BOT,
          chat: { id: body.chat_id, type: "private" },
          date: 1746268800,
          text: body.text,
        },
      });
    },
  });
  return {
    port: server.port!,
    sent,
    async [Symbol.asyncDispose]() {
      await server.stop(true);
    },
  };
}

/**
 * A temp state directory whose config has the telegram plugin talking to `api` and a `telegram`
 * channel; `channel` is more TOML lines for the channel table, `pluginConfig` more keys (each led by
 * `, `) for the plugin's inline config.
 */
export function telegramHome(api: { port: number }, channel = "", pluginConfig = "", prefix?: string): TempDir {
  const home = tempDir(prefix);
  writeCredential(home.path, "tg_secret", TELEGRAM_SECRET);
  writeCredential(home.path, "tg_bot", "987654321:AAE-secret-token");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}"${pluginConfig} }\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\n${channel}`,
  );
  return home;
}

/** Posts one Update (raw JSON) to the gateway's telegram webhook with the right secret header. */
export function postUpdate(gw: { url: string }, body: string): Promise<Response> {
  return fetch(`${gw.url}/webhook/telegram`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET },
    body,
  });
}

/** `exoclaw_channel_refused_total{channel="telegram",reason=…}` from /metrics (0 when absent). */
export async function refusedCount(gw: { url: string }, reason: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  return Number(
    new RegExp(`exoclaw_channel_refused_total\\{channel="telegram",reason="${reason}"\\} (\\d+)`).exec(text)?.[1] ?? 0,
  );
}
