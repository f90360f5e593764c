/**
 * Which tool calls wait for the operator (issue 16, docs/configuration.md "Approvals"). A tool's
 * setting is its own `tool_approval` entry, else its plugin's or MCP server's `approval` (plugins:
 * "never" by default, MCP servers: "untrusted"); host tools (memory_save) never ask.
 *  - "always": every call waits.
 *  - "untrusted": a risky call waits once the turn has taken in untrusted content (it is tainted).
 *    Risky = it can send data out or change things: its `effects` (a plugin's describe, an MCP
 *    tool's annotations), or, for a plugin that declared nothing, "egress" when it reaches the network.
 *    A pure tool never asks.
 * A turn is tainted from the start by a message from anyone but the operator or the channel's
 * owner, and from the moment a tool whose results are untrusted (a plugin that reaches the network,
 * any MCP tool) has answered.
 */
import type { ToolOrigin } from "../agent/index.ts";
import type { ApprovalSetting, Config } from "../config/index.ts";

export type Effect = "egress" | "mutates";

/** The effects that count for a tool: declared, or inferred from its grants. */
export function effectsOf(o: ToolOrigin): readonly Effect[] {
  switch (o.kind) {
    case "host":
      return [];
    case "plugin":
      return o.effects ?? (o.network ? ["egress"] : []);
    case "source":
      return o.effects;
  }
}

/** Whether a tool's results are untrusted content (they taint the rest of the turn). */
export function isTaintSource(o: ToolOrigin): boolean {
  return o.kind === "plugin" ? o.network : o.kind === "source" && o.untrusted;
}

/** The setting that applies to one tool under the current config. */
export function settingOf(o: ToolOrigin, config: Pick<Config, "plugins" | "mcp">): ApprovalSetting {
  if (o.kind === "host") return "never";
  if (o.kind === "plugin") {
    const p = config.plugins.find((x) => x.name === o.plugin);
    return p?.tool_approval?.[o.tool] ?? p?.approval ?? "never";
  }
  const m = config.mcp.find((x) => x.name === o.owner);
  // A source that is not an [[mcp]] server is untrusted by construction: the MCP default applies.
  return m?.tool_approval?.[o.tool] ?? m?.approval ?? "untrusted";
}

/** Why this call must wait ("always" / "untrusted after …"), or null when it may run. */
export function approvalReason(o: ToolOrigin, setting: ApprovalSetting, taintedBy: string | null): string | null {
  if (setting === "always") return "always";
  if (setting === "untrusted" && taintedBy !== null && effectsOf(o).length > 0) return `untrusted after ${taintedBy}`;
  return null;
}
