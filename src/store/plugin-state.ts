/**
 * The plugin state port: each plugin's key/value state (`kv_get`/`kv_set` of the ABI) and its size,
 * which the host holds to the plugin's quota.
 *
 * Every method may reject with StoreError; a failed write changes nothing (all-or-nothing).
 */

export interface PluginStateStore {
  kvGet(plugin: string, key: string): Promise<string | null>;
  /** null deletes. */
  kvSet(plugin: string, key: string, value: string | null): Promise<void>;
  /** How much state a plugin keeps: entries, and bytes of keys plus values (UTF-8). */
  kvStats(plugin: string): Promise<{ entries: number; bytes: number }>;
}
