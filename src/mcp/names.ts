/**
 * The name a model sees for an MCP tool. Anthropic and OpenAI accept tool names matching
 * ^[a-zA-Z0-9_-]{1,64}$ (a dot, SPEC's `<server>.<tool>`, is refused by both), so a tool is offered
 * as `<server>__<tool>`, the form plugin tools take when qualified. A tool name with other characters,
 * or one too long, keeps a readable prefix and gains 8 hex digits of its hash so that two names
 * cleaned to the same text stay apart.
 */
import { createHash } from "node:crypto";

export const MAX_TOOL_NAME = 64;
/** Longest `[[mcp]] name`: leaves room for a readable tool name after `<server>__`. */
export const MAX_SERVER_NAME = 32;

export function modelToolName(server: string, tool: string): string {
  const safe = tool.replace(/[^A-Za-z0-9_-]/g, "_");
  const full = `${server}__${safe}`;
  if (safe === tool && tool !== "" && full.length <= MAX_TOOL_NAME) return full;
  const hash = createHash("sha256").update(tool).digest("hex").slice(0, 8);
  const room = MAX_TOOL_NAME - server.length - 2 - 1 - hash.length;
  return `${server}__${safe.slice(0, Math.max(0, room))}_${hash}`;
}
