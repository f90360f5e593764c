/**
 * Plugin state on NATS: one KV bucket, key `<plugin>.<key>` (both escaped, ./context.ts), so a
 * plugin's entries are one subject filter away for its size (kvStats).
 */
import type { KV } from "@nats-io/kv";
import type { PluginStateStore } from "../plugin-state.ts";
import { type NatsContext, token, untoken } from "./context.ts";

/** Whether a KV message is a delete or purge marker rather than a value. */
export const isTombstone = (m: { headers?: { get(k: string): string } | undefined }): boolean => {
  const op = m.headers?.get("KV-Operation") ?? "";
  return op === "DEL" || op === "PURGE";
};

export async function natsPluginState(ctx: NatsContext): Promise<PluginStateStore> {
  const kv: KV = await ctx.bucket("plugin_state");
  const stream = `KV_${ctx.name("plugin_state")}`;
  const key = (plugin: string, k: string) => `${token(plugin)}.${token(k)}`;
  return {
    kvGet: (plugin, k) =>
      ctx.read("read plugin state", async () => {
        const e = await kv.get(key(plugin, k));
        return e && e.operation === "PUT" ? e.string() : null;
      }),
    kvSet: (plugin, k, value) =>
      ctx.write("write plugin state", async () => {
        if (value === null) await kv.delete(key(plugin, k));
        else await kv.put(key(plugin, k), value);
      }),
    kvStats: (plugin) =>
      ctx.read("read plugin state size", async () => {
        const msgs = await ctx.scan(stream, `$KV.${ctx.name("plugin_state")}.${token(plugin)}.*`, {
          lastPerSubject: true,
        });
        let entries = 0;
        let bytes = 0;
        const te = new TextEncoder();
        for (const m of msgs) {
          if (isTombstone(m)) continue;
          const t = m.subject.slice(m.subject.lastIndexOf(".") + 1);
          entries++;
          bytes += te.encode(untoken(t)).length + m.data.length;
        }
        return { entries, bytes };
      }),
  };
}
