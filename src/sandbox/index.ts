export { pluginHostCommand } from "./child-command.ts";
export {
  BUILTIN_PREFIX,
  builtinPluginBytes,
  loadConfiguredPlugin,
  type PluginEntry,
  readPinnedModule,
  resolvePluginPath,
} from "./configured.ts";
export { ABI_VERSION, parseDescription, type PluginDescription } from "./describe.ts";
export { SandboxError } from "./errors.ts";
export {
  escapeControl,
  type LoadedPlugin,
  MAX_TIMEOUT_MS,
  type PluginGrant,
  PluginHost,
  type PluginHostOptions,
  type PluginKv,
  sha256Hex,
  type ToolResult,
} from "./host.ts";
export { PluginRegistry, type PluginStatus } from "./registry.ts";
export {
  type AllowEntry,
  checkDestination,
  fetchPinned,
  HOST_ONLY_HEADER,
  parseAllowEntry,
  pinnedUrl,
  type PinnedRequest,
  readCapped,
  urlHost,
  urlPort,
} from "./egress.ts";
