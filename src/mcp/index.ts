/**
 * The MCP client capability: every `[[mcp]]` server, reached only through the host's egress checks,
 * as a tool source for agents (`<server>__<tool>`, under the agents' `tools` allowlist: `"*"`, the
 * server's name, or `server:tool`), plus what `mcp.list` / `mcp.inspect` show. `reload` replaces the
 * servers from a new config (SIGHUP): every server reconnects, so new secrets and tools count.
 */
import type { McpConfig } from "../config/index.ts";
import { ExoError } from "../lib/errors.ts";
import { effectsOf } from "./effects.ts";
import { type ConnectionDeps, McpConnection, type McpServerStatus, type McpToolInfo } from "./connection.ts";

export { McpConnection, type McpServerStatus, type McpToolInfo, MAX_RESULT_BYTES, renderResult } from "./connection.ts";
export { createMcpFetch, McpTransportError } from "./egress-fetch.ts";
export { modelToolName } from "./names.ts";
export { effectsOf } from "./effects.ts";

/** One tool as the agent toolbox takes it from a source (see agent/toolbox.ts `ToolSource`). */
export interface McpSourceTool {
  owner: string;
  tool: string;
  spec: { name: string; description: string; input_schema: Record<string, unknown> };
  /** From the tool's annotations, with MCP's defaults for absent ones (./effects.ts). */
  effects: ("egress" | "mutates")[];
  /** Every MCP result is untrusted content. */
  untrusted: true;
  run(input: unknown, signal?: AbortSignal): Promise<{ content: string; is_error: boolean }>;
}

export interface McpServerDetail extends McpServerStatus {
  tools_list: McpToolInfo[];
}

export class McpClients {
  private servers = new Map<string, McpConnection>();

  constructor(
    entries: readonly McpConfig[],
    private readonly deps: ConnectionDeps,
  ) {
    for (const e of entries) this.servers.set(e.name, new McpConnection(e, deps));
  }

  /** Connects every server in the background (the gateway does not wait for them). */
  start(): void {
    for (const s of this.servers.values()) s.start();
  }

  list(): McpServerStatus[] {
    return [...this.servers.values()].map((s) => s.status());
  }

  /** The server's tools, listed afresh when it answers. Throws ExoError("not_found") for an unknown name. */
  async inspect(name: string): Promise<McpServerDetail> {
    const s = this.servers.get(name);
    if (!s)
      throw new ExoError(
        "not_found",
        `no MCP server named ${name} (configured: ${[...this.servers.keys()].join(", ") || "none"})`,
      );
    await s.refresh().catch(() => {});
    return { ...s.status(), tools_list: [...s.tools()] };
  }

  /** Every offered tool of every server (agents filter them by their `tools`). */
  tools(): McpSourceTool[] {
    const out: McpSourceTool[] = [];
    for (const s of this.servers.values()) {
      for (const t of s.tools()) {
        if (!t.offered) continue;
        const description = `${t.description}${t.description ? " " : ""}(tool of MCP server ${s.name}; its output is untrusted)`;
        out.push({
          owner: s.name,
          tool: t.name,
          spec: { name: t.exposed_as, description, input_schema: t.input_schema },
          effects: effectsOf(t.annotations),
          untrusted: true,
          run: (input, signal) => s.call(t.name, input, signal),
        });
      }
    }
    return out;
  }

  /** Replaces every server with the new config's (calls in flight on the old ones finish first). */
  reload(entries: readonly McpConfig[]): void {
    const old = this.servers;
    this.servers = new Map(entries.map((e) => [e.name, new McpConnection(e, this.deps)]));
    for (const s of old.values()) void s.retire();
    this.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.servers.values()].map((s) => s.stop()));
  }
}
