/**
 * Channels from the config: `[channels.<name>]` names a channel plugin (built-in or a
 * `[[plugins]]` entry) and maps the secret roles its verification and sends need to credential
 * names. Configuring a built-in channel grants its plugin the platform's API host, and nothing else.
 */
import { join } from "node:path";
import { type Config, unreadableCredential } from "../config/index.ts";
import { ConfigError } from "../lib/errors.ts";
import type { PluginEntry } from "../sandbox/index.ts";
import type { ChannelSpec } from "./pipeline.ts";

/** Hosts a built-in channel plugin may reach: its platform's API, no more. */
export const BUILTIN_CHANNEL_HOSTS: Readonly<Record<string, readonly string[]>> = {
  http: [],
  telegram: ["api.telegram.org"],
  discord: ["discord.com"],
  whatsapp: ["graph.facebook.com"],
  slack: ["slack.com"],
};

/**
 * The secret roles each built-in channel plugin needs: its verification role(s) (./verify.ts) and the
 * send role its outgoing requests fill in (`{{secret:ROLE}}` in the plugin). Discord answers through
 * the interaction's own webhook, so it needs no bot token (BUILTIN_CHANNEL_OPTIONAL_ROLES).
 */
export const BUILTIN_CHANNEL_ROLES: Readonly<Record<string, readonly string[]>> = {
  http: [],
  telegram: ["webhook_secret", "bot_token"],
  discord: ["public_key"],
  whatsapp: ["app_secret", "verify_token", "access_token"],
  slack: ["signing_secret", "bot_token"],
};

/**
 * Send roles a built-in channel plugin uses when they are configured, and does without otherwise:
 * Discord's bot token opens a DM with the channel's `owner` for approval requests (without it they
 * are only logged, and answered on the other surfaces).
 */
export const BUILTIN_CHANNEL_OPTIONAL_ROLES: Readonly<Record<string, readonly string[]>> = {
  discord: ["bot_token"],
};

/** The channel specs of a config, and the plugin entries their built-ins need. */
export function channelSpecs(
  config: Config,
  credential: (name: string) => string | null,
): { specs: Map<string, ChannelSpec>; builtins: PluginEntry[] } {
  const specs = new Map<string, ChannelSpec>();
  const builtins: PluginEntry[] = [];
  for (const [name, ch] of Object.entries(config.channels)) {
    const plugin = ch.plugin ?? name;
    specs.set(name, {
      name,
      plugin,
      secrets: () => {
        const out: Record<string, string> = {};
        for (const [role, cred] of Object.entries(ch.secrets)) {
          const value = credential(cred);
          if (value !== null) out[role] = value;
        }
        return out;
      },
    });
    const configured = config.plugins.some((p) => p.name === plugin);
    if (!configured && plugin in BUILTIN_CHANNEL_HOSTS && !builtins.some((b) => b.name === plugin)) {
      builtins.push({
        name: plugin,
        path: `builtin:${plugin}`,
        allowed_hosts: [...BUILTIN_CHANNEL_HOSTS[plugin]!],
        allowed_paths: {},
        secrets: [],
        memory_mb: 32,
        timeout_ms: 10_000,
        config: {},
      });
    }
  }
  return { specs, builtins };
}

/**
 * Every credential a configured channel names, missing or blank (SPEC §13: a start-up error, so a
 * channel never runs half-configured and answers every webhook with 401). One line per problem,
 * each naming the channel, the role, the credential and the command that fixes it; [] when all are set.
 */
export function channelSecretProblems(config: Config, credential: (name: string) => string | null): string[] {
  const problems: string[] = [];
  for (const [name, ch] of Object.entries(config.channels)) {
    for (const [role, cred] of Object.entries(ch.secrets)) {
      const value = credential(cred);
      if (value !== null && value.trim() !== "") continue;
      const where = join(config.home, "credentials", `${cred}.key`);
      const unreadable = value === null ? unreadableCredential(config.home, cred) : null;
      if (unreadable !== null) {
        problems.push(
          `channel ${name}: its ${role} secret, credential ${cred}: ${unreadable}: give it to the gateway's user (chown it like the state directory ${config.home})`,
        );
        continue;
      }
      problems.push(
        `channel ${name}: its ${role} secret, credential ${cred} (${where}), is ${value === null ? "missing" : "blank"}: run \`exoclaw secret set ${cred}\``,
      );
    }
  }
  return problems;
}

/** Throws ConfigError listing every missing or blank channel secret, one per line (see channelSecretProblems). */
export function checkChannelSecrets(config: Config, credential: (name: string) => string | null): void {
  const problems = channelSecretProblems(config, credential);
  const file = config.file ?? "defaults";
  if (problems.length === 1) throw new ConfigError(`${file}: ${problems[0]}`);
  if (problems.length > 1)
    throw new ConfigError(
      `${file}: ${problems.length} channel secrets are missing or blank:\n  ${problems.join("\n  ")}`,
    );
}
