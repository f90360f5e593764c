/**
 * RPC methods over the MCP client (SPEC §5): `mcp.list` — every `[[mcp]]` server with its state and
 * tool counts; `mcp.inspect {name}` — one server's tools, listed afresh, with descriptions, input
 * schemas and annotations (readOnlyHint, destructiveHint, idempotentHint, openWorldHint). Operator
 * methods: what the servers say is shown, nothing is granted.
 */
import * as v from "valibot";
import type { McpClients } from "../mcp/index.ts";
import { defineMethod, type Method } from "../protocol/methods.ts";

const Name = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[a-z0-9_-]+$/, "MCP server names match [a-z0-9_-]+")),
});

export function mcpMethods(clients: () => McpClients): Map<string, Method<never>> {
  return new Map([
    ["mcp.list", defineMethod({ operator: true, handle: () => ({ servers: clients().list() }) })],
    [
      "mcp.inspect",
      defineMethod({
        params: Name,
        operator: true,
        handle: async (p) => {
          const { tools_list, ...server } = await clients().inspect(p.name);
          return { ...server, tools: tools_list };
        },
      }),
    ],
  ]);
}
