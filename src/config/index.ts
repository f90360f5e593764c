export {
  type Config,
  type ConfigOverrides,
  type Env,
  loadConfig,
  maskConfig,
  resolveConfigPath,
  resolveHome,
  STDIO_REFUSED,
} from "./load.ts";
export { LiveConfig } from "./live.ts";
export type { AgentConfig, ApprovalSetting, ChannelConfig, ConfigFile, GatewayConfig, McpConfig } from "./schema.ts";
export { giveToStateOwner, readCredential, unreadableCredential, writeCredential } from "./credentials.ts";
export { type PluginConfigEntry, removePluginEntry, renderPluginEntry, upsertPluginEntry } from "./edit.ts";
export { API_KEY_ENV, resolveApiKey, type ResolvedKey } from "./api-keys.ts";
export {
  isProviderId,
  type Price,
  PROVIDER_IDS,
  type ProviderEntry,
  type ProviderId,
  PROVIDERS,
  takesNoKey,
} from "./providers.ts";
