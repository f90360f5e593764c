/**
 * Approvals over RPC (issue 16, docs/protocol.md): `approval.list` — the tool calls waiting for the
 * operator (or, with `state`/`session`, the stored decisions) — and `approval.resolve {id, allow,
 * remember?}`, and the remembered decisions: `approval.rules`, `approval.forget {agent, tool}`. Operator methods: whoever holds the gateway token decides.
 */
import * as v from "valibot";
import type { ApprovalBroker } from "../approvals/index.ts";
import { ExoError } from "../lib/errors.ts";
import { defineMethod, type Method } from "../protocol/methods.ts";
import type { ApprovalStore } from "../store/index.ts";

export const ApprovalListParams = v.strictObject({
  /** Stored requests in that state (newest first) instead of the pending ones. */
  state: v.optional(v.picklist(["pending", "allowed", "denied", "timeout"])),
  session: v.optional(v.pipe(v.string(), v.minLength(1))),
  limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(500)), 100),
});
export const ApprovalResolveParams = v.strictObject({
  id: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
  allow: v.boolean(),
  /** Store the decision for this agent and tool: it is not asked again. */
  remember: v.optional(v.boolean(), false),
});

export const ApprovalForgetParams = v.strictObject({
  agent: v.pipe(v.string(), v.minLength(1)),
  tool: v.pipe(v.string(), v.minLength(1)),
});

export function approvalMethods(broker: ApprovalBroker, store: ApprovalStore): Map<string, Method<never>> {
  return new Map([
    [
      "approval.list",
      defineMethod({
        params: ApprovalListParams,
        operator: true,
        handle: async (p) => {
          if (p.state === undefined && p.session === undefined)
            return { approvals: broker.pending().slice(0, p.limit) };
          return {
            approvals: await store.listApprovals({
              limit: p.limit,
              ...(p.state !== undefined && { state: p.state }),
              ...(p.session !== undefined && { session: p.session }),
            }),
          };
        },
      }),
    ],
    [
      "approval.resolve",
      defineMethod({
        params: ApprovalResolveParams,
        operator: true,
        handle: async (p) => {
          const r = await broker.resolve(p.id, p.allow, { remember: p.remember, by: "operator" });
          return { id: r.id, tool: r.tool, state: r.state, remember: r.remember };
        },
      }),
    ],
    [
      "approval.rules",
      defineMethod({ operator: true, handle: async () => ({ rules: await store.listApprovalRules() }) }),
    ],
    [
      "approval.forget",
      defineMethod({
        params: ApprovalForgetParams,
        operator: true,
        handle: async (p) => {
          if (!(await store.deleteApprovalRule(p.agent, p.tool)))
            throw new ExoError("not_found", `no remembered decision for ${p.tool} of agent ${p.agent}`, { data: p });
          return { agent: p.agent, tool: p.tool, forgotten: true };
        },
      }),
    ],
  ]);
}
