/**
 * The gate for one agent turn, from what the runner knows of it (its session and person): who the
 * turn is for decides whether it starts tainted, and where the approval request is announced.
 * A turn without a person is the operator's own (WebSocket, CLI, OpenAI-compatible, /mcp); a channel
 * turn names its sender, and is tainted unless that sender is the channel's configured `owner`.
 */
import { personKey, type SessionAddress } from "../core/index.ts";
import type { ToolBox } from "../agent/index.ts";
import type { Config } from "../config/index.ts";
import type { ApprovalBroker } from "./broker.ts";
import { gateToolBox } from "./gate.ts";

export interface TurnGateDeps {
  broker: ApprovalBroker;
  config: () => Pick<Config, "plugins" | "mcp" | "channels">;
}

/** What taints a turn before any tool runs, or null for the operator's (or owner's) own message. */
export function initialTaint(
  config: Pick<Config, "channels">,
  session: SessionAddress | null,
  person: string | null | undefined,
): string | null {
  if (person === undefined || !session) return null;
  if (person === null) return `a group message on ${session.channel}`;
  const owner = config.channels[session.channel]?.owner ?? "";
  if (owner !== "" && person === personKey(session.channel, session.account, owner)) return null;
  return `a message from ${person}`;
}

export function gateTurn(
  inner: ToolBox,
  deps: TurnGateDeps,
  agent: string,
  session: SessionAddress | null,
  person: string | null | undefined,
): ToolBox {
  const config = deps.config();
  return gateToolBox(inner, {
    broker: deps.broker,
    agent,
    session: session?.key ?? `stateless:${agent}`,
    taintedBy: initialTaint(config, session, person),
    config: deps.config,
    origin: person !== undefined && session ? { channel: session.channel, account: session.account } : null,
  });
}

/** Every secret value the config names (plugins, MCP servers, channels), for scrubbing what the operator is shown. */
export function configuredSecrets(
  config: Pick<Config, "plugins" | "mcp" | "channels">,
  read: (name: string) => string | null,
): string[] {
  const names = new Set<string>([
    ...config.plugins.flatMap((p) => p.secrets),
    ...config.mcp.flatMap((m) => m.secrets),
    ...Object.values(config.channels).flatMap((c) => Object.values(c.secrets)),
  ]);
  return [...names].map(read).filter((v): v is string => v !== null && v !== "");
}
