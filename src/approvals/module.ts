/**
 * The approvals capability module (see src/gateway/capability.ts for the lifecycle): owns the broker
 * (tool calls waiting for the operator, ./broker.ts), the per-turn gate around an agent's tools
 * (./turn.ts), the channel owners' Allow/Deny buttons (./owners.ts), the `exoclaw_approvals_pending`
 * gauge and its `status` facts. The gateway's adapter (src/gateway/modules.ts) adds `approval.*`.
 *
 * Reload: `[approvals] timeout_ms`, the plugins' and MCP servers' `approval` settings and the
 * channels' `owner` are read from the live config at each call, so a reload applies to the next
 * request at once (a request already waiting keeps the deadline it was given); nothing is frozen.
 */
import type { SessionAddress } from "../core/index.ts";
import type { AgentConfig, LiveConfig } from "../config/index.ts";
import { readCredential } from "../config/index.ts";
import type { Logger } from "../lib/log.ts";
import type { Metrics } from "../lib/metrics.ts";
import type { ApprovalStore } from "../store/index.ts";
import type { ToolBox } from "../agent/index.ts";
import { ApprovalBroker } from "./broker.ts";
import { type ButtonPress, OwnerApprovals, type OwnerDeps } from "./owners.ts";
import { configuredSecrets, gateTurn } from "./turn.ts";

export interface ApprovalsModuleDeps {
  live: LiveConfig;
  store: ApprovalStore;
  metrics: Metrics;
  log: Logger;
  /** Sends an owner a message through a channel (the channels module's `notify`). */
  send: OwnerDeps["send"];
}

export class ApprovalsModule {
  readonly name = "approvals";
  readonly broker: ApprovalBroker;
  private readonly owners: OwnerApprovals;

  private readonly live: LiveConfig;

  constructor(deps: ApprovalsModuleDeps) {
    const { live } = deps;
    this.live = live;
    const log = deps.log.child({ module: "approvals" });
    // The gateway token comes from the flag or the environment only: it does not change on reload.
    const token = live.current.gateway.token;
    this.broker = new ApprovalBroker({
      store: deps.store,
      timeoutMs: () => live.current.approvals.timeout_ms,
      secrets: () => [
        ...configuredSecrets(live.current, (n) => readCredential(live.current.home, n)),
        ...(token ? [token] : []),
      ],
      log,
    });
    // A channel's owner gets approval requests with buttons, and only the owner's press decides.
    this.owners = new OwnerApprovals({
      broker: this.broker,
      channels: () => live.current.channels,
      log,
      send: deps.send,
    });
    this.broker.onRequest((p) => this.owners.announce(p));
    deps.metrics.gauge(
      "exoclaw_approvals_pending",
      "Tool calls waiting for the operator's approval.",
      () => this.broker.pending().length,
    );
  }

  /** Before the gateway listens: requests left pending by an earlier process are closed (timed out, "restart"). */
  load(): Promise<void> {
    return this.broker.start();
  }

  /** One turn's tools behind the approval policy (who the turn is for decides its initial taint). */
  gate(tools: ToolBox, agent: AgentConfig, session: SessionAddress | null, person: string | null | undefined): ToolBox {
    return gateTurn(tools, { broker: this.broker, config: () => this.live.current }, agent.id, session, person);
  }

  /** A verified button press from a channel (its webhook); decides only for that channel's owner. */
  press(channel: string, m: ButtonPress): Promise<void> {
    return this.owners.press(channel, m);
  }

  status(): Record<string, unknown> {
    return { approvals: { pending: this.broker.pending().length, timeout_ms: this.live.current.approvals.timeout_ms } };
  }

  reload(): [] {
    return [];
  }

  /**
   * Shutdown, last step: a request still waiting (its turn normally ended with the drain, cancelled)
   * is denied by "shutdown", so no caller is left hanging once nobody can answer.
   */
  stop(): Promise<void> {
    return this.broker.close("shutdown");
  }
}
