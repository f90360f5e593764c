/**
 * One turn's tools behind the approval policy (./policy.ts): each call asks the policy first and,
 * when it must wait, the broker; a denied call is not run and the model reads why. The turn's taint
 * lives here: it starts tainted for a message from someone other than the operator or the channel's
 * owner, and becomes tainted once a tool with untrusted results has answered.
 */
import type { ToolBox, ToolRunResult } from "../agent/index.ts";
import type { ApprovalSetting, Config } from "../config/index.ts";
import { describeError } from "../lib/errors.ts";
import type { ApprovalBroker } from "./broker.ts";
import { approvalReason, isTaintSource, settingOf } from "./policy.ts";

export interface GateContext {
  broker: ApprovalBroker;
  agent: string;
  /** The session key, or a label for a stateless turn. */
  session: string;
  /** What tainted the turn before any tool ran (e.g. "a message from telegram:bot:42"), or null. */
  taintedBy: string | null;
  /** The config the settings are read from (read at each call: a reload applies at once). */
  config: () => Pick<Config, "plugins" | "mcp">;
  /** The channel the turn came from, so its owner is asked; null for the operator's own turns. */
  origin: { channel: string; account: string } | null;
  /** Test seam: a fixed setting for every tool. */
  setting?: (name: string) => ApprovalSetting | undefined;
}

export const DENIED = "denied by the operator: this tool call was not run";
export const TIMED_OUT = "denied: no answer from the operator before the approval timeout; this tool call was not run";
export const CANCELLED = "not run: the turn was cancelled while this call waited for approval";

export function gateToolBox(inner: ToolBox, ctx: GateContext): ToolBox {
  let taintedBy = ctx.taintedBy;
  return {
    specs: () => inner.specs(),
    ...(inner.origin && { origin: (name: string) => inner.origin!(name) }),
    async run(name, input, signal, call): Promise<ToolRunResult> {
      const origin = inner.origin?.(name);
      if (!origin) return inner.run(name, input, signal, call);
      const setting = ctx.setting?.(name) ?? settingOf(origin, ctx.config());
      const why = approvalReason(origin, setting, taintedBy);
      let approval: ToolRunResult["approval"];
      if (why !== null) {
        try {
          approval = await ctx.broker.ask({
            agent: ctx.agent,
            session: ctx.session,
            tool: name,
            tool_use_id: call?.id ?? "",
            input,
            why,
            signal,
            origin: ctx.origin,
            ...(call && { emit: call.emit }),
          });
        } catch (e) {
          // The request could not be stored (a store failure): fail closed, the call is not run.
          return {
            content: `not run: the approval request could not be recorded (${describeError(e)})`,
            is_error: true,
          };
        }
        if (approval.state !== "allowed") {
          const content = approval.state === "timeout" ? TIMED_OUT : approval.by === "cancelled" ? CANCELLED : DENIED;
          return { content, is_error: true, approval };
        }
      }
      const r = await inner.run(name, input, signal, call);
      if (isTaintSource(origin)) taintedBy ??= `a result of ${name}`;
      return approval ? { ...r, approval } : r;
    },
  };
}
