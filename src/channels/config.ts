/**
 * Channels from the config: `[channels.<name>]` names a channel plugin (built-in or a
 * `[[plugins]]` entry) and maps the secret roles its verification and sends need to credential
 * names. Configuring a built-in channel grants its plugin the platform's API host, and nothing else.
 */
import type { Config } from "../config/index.ts";
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
 * the interaction's own webhook, so it needs no bot token.
 */
export const BUILTIN_CHANNEL_ROLES: Readonly<Record<string, readonly string[]>> = {
  http: [],
  telegram: ["webhook_secret", "bot_token"],
  discord: ["public_key"],
  whatsapp: ["app_secret", "verify_token", "access_token"],
  slack: ["signing_secret", "bot_token"],
};

/** The channel specs of a config, and the plugin entries their built-ins need. */
export function channelSpecs(config: Config, credential: (name: string) => string | null): { specs: Map<string, ChannelSpec>; builtins: PluginEntry[] } {
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
