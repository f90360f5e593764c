/**
 * The tools an agent may use: tools of loaded tool plugins, filtered by the agent's `tools`
 * setting (`"*"`, a plugin name, or `plugin:tool`). The model sees each tool under its own name;
 * when two plugins offer the same name, the later one is shown as `<plugin>__<tool>`.
 */
import type { LoadedPlugin, PluginHost } from "../sandbox/index.ts";
import type { ToolBox } from "./loop.ts";
import type { HostTool } from "../memory/index.ts";
import type { ToolSpec } from "./types.ts";

export function isToolAllowed(patterns: readonly string[], plugin: string, tool: string): boolean {
  return patterns.some((p) => p === "*" || p === plugin || p === `${plugin}:${tool}`);
}

export function createToolBox(host: Pick<PluginHost, "list" | "callTool">, patterns: readonly string[], hostTools: readonly HostTool[] = []): ToolBox {
  const table = () => {
    const byName = new Map<string, { plugin: LoadedPlugin; tool: string; spec: ToolSpec }>();
    for (const plugin of host.list()) {
      if (plugin.description.kind !== "tool") continue;
      for (const t of plugin.description.tools) {
        if (!isToolAllowed(patterns, plugin.name, t.name)) continue;
        const name = byName.has(t.name) ? `${plugin.name}__${t.name}` : t.name;
        byName.set(name, { plugin, tool: t.name, spec: { name, description: t.description, input_schema: t.input_schema } });
      }
    }
    return byName;
  };
  const own = new Map(hostTools.map((t) => [t.spec.name, t]));
  return {
    specs: () => [...hostTools.map((t) => t.spec), ...[...table().values()].filter((t) => !own.has(t.spec.name)).map((t) => t.spec)],
    async run(name, input) {
      const mine = own.get(name);
      if (mine) {
        try {
          return await mine.run(input);
        } catch (e) {
          return { content: e instanceof Error ? e.message : String(e), is_error: true };
        }
      }
      const entry = table().get(name);
      if (!entry) return { content: `unknown tool: ${name}`, is_error: true };
      try {
        const r = await host.callTool(entry.plugin.name, entry.tool, input);
        return { content: r.content, is_error: r.is_error };
      } catch (e) {
        return { content: e instanceof Error ? e.message : String(e), is_error: true };
      }
    },
  };
}
