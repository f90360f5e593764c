/**
 * `exoclaw channel setup NAME [--url ORIGIN]`: points a chat platform at this gateway's webhook,
 * `<public_url>/webhook/NAME`. Telegram has an API for it: this command registers the webhook with
 * the channel's bot token and webhook secret (generating and storing the secret when there is none)
 * and shows what Telegram reports. Slack, Discord and WhatsApp are set in their consoles: it prints
 * the URL to paste and the credentials the channel needs.
 */
import { defineCommand } from "citty";
import { randomBytes } from "node:crypto";
import * as v from "valibot";
import { type Config, loadConfig, readCredential, writeCredential } from "../config/index.ts";
import { BUILTIN_CHANNEL_HOSTS } from "../channels/index.ts";
import { ExoError, UsageError } from "../lib/errors.ts";
import { scrub } from "../lib/log.ts";
import { configArg, stringFlag } from "./_args.ts";

type Platform = "telegram" | "slack" | "discord" | "whatsapp" | "http";

/** The secret roles each built-in channel needs, and where its console takes the webhook URL. */
const PLATFORMS: Record<Platform, { roles: readonly string[]; paste?: string }> = {
  telegram: { roles: ["webhook_secret", "bot_token"] },
  slack: {
    roles: ["signing_secret", "bot_token"],
    paste: "your Slack app's Event Subscriptions → Request URL (https://api.slack.com/apps)",
  },
  discord: {
    roles: ["public_key"],
    paste:
      "your Discord application's General Information → Interactions Endpoint URL (https://discord.com/developers/applications)",
  },
  whatsapp: {
    roles: ["app_secret", "verify_token", "access_token"],
    paste: "your Meta app's WhatsApp → Configuration → Callback URL",
  },
  http: { roles: [] },
};

const TELEGRAM_API = "https://api.telegram.org";
/** Telegram's secret_token alphabet and length (wire-formats B1.1). */
const SECRET_TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

const Envelope = v.object({
  ok: v.boolean(),
  result: v.optional(v.unknown()),
  error_code: v.optional(v.number()),
  description: v.optional(v.string()),
});
const WebhookInfo = v.object({
  url: v.string(),
  pending_update_count: v.number(),
  last_error_date: v.optional(v.number()),
  last_error_message: v.optional(v.string()),
});

/** The public origin: --url wins over `[gateway] public_url`. Throws UsageError / ExoError with the fix. */
function publicOrigin(config: Config, flag: string | undefined): string {
  if (flag !== undefined) {
    let ok = false;
    try {
      const u = new URL(flag);
      ok = (u.protocol === "https:" || u.protocol === "http:") && u.origin === flag.replace(/\/$/, "");
    } catch {
      ok = false;
    }
    if (!ok)
      throw new UsageError(
        `--url: expected the gateway's public origin such as https://bot.example.com (no path: /webhook/<name> is added), got "${flag}"`,
      );
    return flag.replace(/\/$/, "");
  }
  if (config.gateway.public_url) return config.gateway.public_url.replace(/\/$/, "");
  throw new ExoError(
    "config_invalid",
    `no public URL: set public_url = "https://bot.example.com" (the address your reverse proxy serves) under [gateway] in ${config.file ?? "<state>/config.toml"}, or pass --url https://bot.example.com`,
  );
}

/** Which built-in a channel runs (its plugin, or the `builtin:` path of its [[plugins]] entry), or null for a plugin of the operator's. */
function platformOf(config: Config, plugin: string): Platform | null {
  const entry = config.plugins.find((p) => p.name === plugin);
  const id = entry ? (entry.path.startsWith("builtin:") ? entry.path.slice("builtin:".length) : null) : plugin;
  return id !== null && id in BUILTIN_CHANNEL_HOSTS && id in PLATFORMS ? (id as Platform) : null;
}

/** One line per role: the credential it names, and whether it is set (or how to map it). */
function credentialLines(config: Config, channel: string, roles: readonly string[]): string[] {
  const secrets = config.channels[channel]?.secrets ?? {};
  const all = [...new Set([...roles, ...Object.keys(secrets)])];
  return all.map((role) => {
    const cred = secrets[role];
    if (cred === undefined)
      return `  ${role}: not mapped: add ${role} = "${channel}_${role}" to secrets under [channels.${channel}], then exoclaw secret set ${channel}_${role}`;
    const value = readCredential(config.home, cred);
    return `  ${role}: credential ${cred}, ${value !== null && value.trim() !== "" ? "set" : `missing: exoclaw secret set ${cred}`}`;
  });
}

/** A credential a command cannot do without; throws ExoError naming the fix. */
function required(config: Config, channel: string, role: string, hint: string): { name: string; value: string | null } {
  const name = config.channels[channel]?.secrets[role];
  if (name === undefined)
    throw new ExoError(
      "config_invalid",
      `[channels.${channel}] maps no ${role} secret: add ${role} = "${channel}_${role}" to its secrets (${hint})`,
    );
  const value = readCredential(config.home, name);
  return { name, value: value !== null && value.trim() !== "" ? value : null };
}

async function setupTelegram(
  config: Config,
  channel: string,
  plugin: string,
  webhookUrl: string,
  out: (line: string) => void,
): Promise<void> {
  const bot = required(config, channel, "bot_token", "the token from @BotFather");
  if (bot.value === null)
    throw new ExoError(
      "config_invalid",
      `credential ${bot.name} (the bot token from @BotFather) is missing: exoclaw secret set ${bot.name}`,
    );
  const token = bot.value;
  const secretRole = required(
    config,
    channel,
    "webhook_secret",
    "Telegram sends it back in X-Telegram-Bot-Api-Secret-Token",
  );
  let secret = secretRole.value;
  if (secret === null) {
    secret = randomBytes(32).toString("base64url");
    const path = writeCredential(config.home, secretRole.name, secret);
    out(`generated a webhook secret and stored it as ${secretRole.name} (${path}, mode 600)`);
  } else if (!SECRET_TOKEN.test(secret)) {
    throw new ExoError(
      "config_invalid",
      `credential ${secretRole.name} is not a valid Telegram secret_token (1-256 of A-Z a-z 0-9 _ -): replace it, e.g. openssl rand -hex 32 | exoclaw secret set ${secretRole.name}`,
    );
  }
  const hide = [token, secret];
  const base = (config.plugins.find((p) => p.name === plugin)?.config.api_base ?? TELEGRAM_API).replace(/\/$/, "");
  const call = async (method: string, body?: unknown): Promise<unknown> => {
    let res: Response;
    try {
      res = await fetch(`${base}/bot${token}/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body ?? {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (e) {
      const reason = (e as { code?: string }).code ?? (e instanceof Error ? e.name : "error");
      throw new ExoError("unavailable", scrub(`telegram ${method}: cannot reach ${base} (${reason})`, hide));
    }
    const text = await res.text();
    let parsed: v.SafeParseResult<typeof Envelope>;
    try {
      parsed = v.safeParse(Envelope, JSON.parse(text));
    } catch {
      parsed = v.safeParse(Envelope, null);
    }
    if (!parsed.success)
      throw new ExoError(
        "unavailable",
        scrub(`telegram ${method}: ${base} answered HTTP ${res.status} without a Bot API response`, hide),
      );
    const r = parsed.output;
    if (!r.ok) {
      const code = r.error_code ?? res.status;
      const fix =
        code === 401 || code === 404
          ? `: the bot token is wrong; set the one from @BotFather: exoclaw secret set ${bot.name}`
          : "";
      throw new ExoError(
        "unavailable",
        scrub(`telegram ${method}: ${r.description ?? "failed"} (error ${code})${fix}`, hide),
      );
    }
    return r.result;
  };
  await call("setWebhook", { url: webhookUrl, secret_token: secret, allowed_updates: ["message", "edited_message"] });
  out(`telegram webhook set: ${webhookUrl}`);
  const info = v.safeParse(WebhookInfo, await call("getWebhookInfo"));
  if (!info.success) throw new ExoError("unavailable", "telegram getWebhookInfo: unexpected result");
  const { url, pending_update_count, last_error_message, last_error_date } = info.output;
  out(scrub(`telegram reports: url ${url || "(none)"}, pending updates ${pending_update_count}`, hide));
  const when = last_error_date ? ` (${new Date(last_error_date * 1000).toISOString()})` : "";
  out(scrub(`last delivery error: ${last_error_message ? last_error_message + when : "none"}`, hide));
  out(`Telegram sends the secret back in X-Telegram-Bot-Api-Secret-Token; the gateway checks it before anything else`);
}

const setup = defineCommand({
  meta: {
    name: "setup",
    description:
      "Register the channel's webhook URL with Telegram, or print the URL to paste into the platform's console",
  },
  args: {
    ...configArg,
    name: { type: "positional", description: "The channel ([channels.NAME] in the config)", required: true },
    url: { type: "string", description: "The gateway's public origin (default: [gateway] public_url)" },
  },
  async run({ args }) {
    const config = loadConfig(process.env, { file: stringFlag("config", args.config) });
    const name = String(args.name);
    const ch = config.channels[name];
    if (!ch) {
      const names = Object.keys(config.channels);
      throw new ExoError(
        "not_found",
        `no channel "${name}" in ${config.file ?? "the config (there is no config file)"}; configured channels: ${names.length > 0 ? names.join(", ") : `none (add a [channels.${name}] table, see docs/channels.md)`}`,
      );
    }
    const webhookUrl = `${publicOrigin(config, stringFlag("url", args.url))}/webhook/${name}`;
    const plugin = ch.plugin ?? name;
    const platform = platformOf(config, plugin);
    const out = (line: string) => void process.stdout.write(line + "\n");
    if (platform === "telegram") return void (await setupTelegram(config, name, plugin, webhookUrl, out));
    const spec = platform ? PLATFORMS[platform] : { roles: [] as string[] };
    if (platform === "http")
      out(`${name}: POST JSON {"peer":"…","text":"…"} to ${webhookUrl} with Authorization: Bearer <gateway token>`);
    else {
      out(`${name}: ${spec.paste ? `paste this URL into ${spec.paste}` : "the webhook URL for its platform"}:`);
      out(`  ${webhookUrl}`);
    }
    if (platform === "whatsapp") {
      const verify = ch.secrets.verify_token;
      out(
        `  with the Verify token set to the value of credential ${verify ?? "<verify_token>"} (the gateway answers Meta's GET handshake with it)`,
      );
    }
    const lines = credentialLines(config, name, spec.roles);
    if (lines.length > 0) out(["credentials:", ...lines].join("\n"));
    if (platform && platform !== "http") out(`(${platform} has no API to set this, so nothing was sent)`);
  },
});

export default defineCommand({
  meta: { name: "channel", description: "Connect chat platforms to the gateway" },
  subCommands: { setup },
});
