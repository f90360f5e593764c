export { type Config, type ConfigOverrides, type Env, loadConfig, maskConfig, resolveConfigPath, resolveHome, STDIO_REFUSED } from "./load.ts";
export type { AgentConfig, ChannelConfig, ConfigFile, GatewayConfig, McpConfig, ApprovalSetting } from "./schema.ts";
export { giveToStateOwner, readCredential, unreadableCredential, writeCredential } from "./credentials.ts";
export { type PluginConfigEntry, removePluginEntry, renderPluginEntry, upsertPluginEntry } from "./edit.ts";
export { API_KEY_ENV, resolveApiKey, type ResolvedKey } from "./api-keys.ts";
