/**
 * What an MCP tool can do, from its annotations, for approvals (issue 16). Annotations are hints, so
 * an absent one takes the MCP specification's default, which is the risky reading: `readOnlyHint`
 * false, `destructiveHint` true, `openWorldHint` true. "egress": the tool reaches outside (open
 * world); "mutates": it changes its environment and is not declared harmless (read-only, or not
 * destructive). A tool annotated read-only and closed-world is pure.
 */
import type { McpToolAnnotations } from "./connection.ts";

export function effectsOf(a: McpToolAnnotations): ("egress" | "mutates")[] {
  const out: ("egress" | "mutates")[] = [];
  if (a.openWorldHint !== false) out.push("egress");
  if (a.readOnlyHint !== true && a.destructiveHint !== false) out.push("mutates");
  return out;
}
