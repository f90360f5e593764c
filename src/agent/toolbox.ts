/**
 * The tools an agent may use: tools of loaded tool plugins and of other tool sources (MCP servers),
 * filtered by the agent's `tools` setting (`"*"`, a plugin or source name, or `name:tool`). The model
 * sees each plugin tool under its own name, and a source's tool under the name the source gives it.
 * Who owns a name never depends on load order: host tools (memory_save, …) come first and no plugin
 * can take their names; among plugins, the one whose name sorts first owns a bare tool name and the
 * others are shown as `<plugin>__<tool>`; then the sources' tools; a name that is still taken is left
 * out rather than shadowed.
 */
import type { LoadedPlugin, PluginHost } from "../sandbox/index.ts";
import type { ToolBox, ToolOrigin } from "./loop.ts";
import type { HostTool } from "../memory/index.ts";
import type { ToolSpec } from "./types.ts";
import { describeError } from "../lib/errors.ts";

/** A tool another source offers (an MCP server's): `owner`/`tool` are what the allowlist matches. */
export interface SourceTool {
  owner: string;
  tool: string;
  spec: ToolSpec;
  /** What a call can do (approvals): "egress" sends data out, "mutates" changes things; default none. */
  effects?: readonly ("egress" | "mutates")[];
  /** Its results are untrusted content (an MCP server's): they taint the turn. */
  untrusted?: boolean;
  /** Never throws: a failure is an `is_error` result. */
  run(input: unknown, signal?: AbortSignal): Promise<{ content: string; is_error: boolean }>;
}

/** Tools from somewhere other than the plugin host, read at each turn (they may come and go). */
export interface ToolSource {
  tools(): readonly SourceTool[];
}

export function isToolAllowed(patterns: readonly string[], plugin: string, tool: string): boolean {
  return patterns.some((p) => p === "*" || p === plugin || p === `${plugin}:${tool}`);
}

/**
 * `scope` is the person whose turn this is (e.g. `telegram:bot:123`): every plugin call made from
 * this toolbox runs in that scope, so a plugin sees only that person's state.
 */
export function createToolBox(
  host: Pick<PluginHost, "list" | "callTool">,
  patterns: readonly string[],
  hostTools: readonly HostTool[] = [],
  scope = "",
  sources: readonly ToolSource[] = [],
): ToolBox {
  const own = new Map(hostTools.map((t) => [t.spec.name, t]));
  const table = () => {
    const byName = new Map<
      string,
      { plugin: LoadedPlugin; tool: string; spec: ToolSpec } | { source: SourceTool; spec: ToolSpec }
    >();
    const offered: { plugin: LoadedPlugin; tool: ToolSpec }[] = [];
    const plugins = host.list().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const plugin of plugins) {
      if (plugin.description.kind !== "tool") continue;
      for (const t of plugin.description.tools)
        if (isToolAllowed(patterns, plugin.name, t.name)) offered.push({ plugin, tool: t });
    }
    const taken = (name: string) => own.has(name) || byName.has(name);
    const add = (name: string, o: (typeof offered)[number]) =>
      byName.set(name, {
        plugin: o.plugin,
        tool: o.tool.name,
        spec: { name, description: o.tool.description, input_schema: o.tool.input_schema },
      });
    // Bare names first, so a qualified name can never displace another plugin's bare one.
    const rest = offered.filter((o) => (taken(o.tool.name) ? true : (add(o.tool.name, o), false)));
    for (const o of rest) {
      const name = `${o.plugin.name}__${o.tool.name}`;
      if (!taken(name)) add(name, o);
    }
    for (const src of sources) {
      for (const t of src.tools())
        if (isToolAllowed(patterns, t.owner, t.tool) && !taken(t.spec.name))
          byName.set(t.spec.name, { source: t, spec: t.spec });
    }
    return byName;
  };
  return {
    specs: () => [...hostTools.map((t) => t.spec), ...[...table().values()].map((t) => t.spec)],
    origin(name): ToolOrigin | undefined {
      if (own.has(name)) return { kind: "host" };
      const entry = table().get(name);
      if (!entry) return undefined;
      if ("source" in entry)
        return {
          kind: "source",
          owner: entry.source.owner,
          tool: entry.source.tool,
          effects: entry.source.effects ?? [],
          untrusted: entry.source.untrusted === true,
        };
      const declared = entry.plugin.description.tools.find((t) => t.name === entry.tool)?.effects;
      return {
        kind: "plugin",
        plugin: entry.plugin.name,
        tool: entry.tool,
        network: entry.plugin.grant.allowed_hosts.length > 0,
        effects: declared,
      };
    },
    async run(name, input, signal) {
      const mine = own.get(name);
      if (mine) {
        try {
          return await mine.run(input);
        } catch (e) {
          return { content: describeError(e), is_error: true };
        }
      }
      const entry = table().get(name);
      if (!entry) return { content: `unknown tool: ${name}`, is_error: true };
      try {
        if ("source" in entry) return await entry.source.run(input, signal);
        const r = await host.callTool(entry.plugin.name, entry.tool, input, { scope });
        return { content: r.content, is_error: r.is_error };
      } catch (e) {
        return { content: describeError(e), is_error: true };
      }
    },
  };
}
