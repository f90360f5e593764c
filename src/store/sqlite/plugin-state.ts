/** Plugin state on SQLite: the `plugin_kv` table, sized in UTF-8 bytes for the quota. */
import type { PluginStateStore } from "../plugin-state.ts";
import type { SqliteContext } from "./context.ts";

export function sqlitePluginState(ctx: SqliteContext): PluginStateStore {
  const get = ctx.q<{ value: string }>("SELECT value FROM plugin_kv WHERE plugin = ? AND key = ?");
  const set = ctx.q(
    "INSERT INTO plugin_kv (plugin, key, value) VALUES (?, ?, ?) ON CONFLICT(plugin, key) DO UPDATE SET value = excluded.value",
  );
  const del = ctx.q("DELETE FROM plugin_kv WHERE plugin = ? AND key = ?");
  // CAST AS BLOB: length() of text counts characters; the quota is in bytes.
  const stats = ctx.q<{ entries: number; bytes: number }>(
    "SELECT COUNT(*) AS entries, COALESCE(SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0) AS bytes FROM plugin_kv WHERE plugin = ?",
  );
  return {
    kvGet: (plugin, key) => ctx.run("read plugin state", () => get.get(plugin, key)?.value ?? null),
    kvSet: (plugin, key, value) =>
      ctx.run("write plugin state", () => {
        if (value === null) del.run(plugin, key);
        else set.run(plugin, key, value);
      }),
    kvStats: (plugin) => ctx.run("read plugin state size", () => stats.get(plugin) ?? { entries: 0, bytes: 0 }),
  };
}
