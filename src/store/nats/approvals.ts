/**
 * Approvals on NATS: one KV bucket of records (key: the approval id) and one of remembered rules
 * (key: `<agent>.<tool>`), both escaped. A decision is a compare-and-set on the record's revision, so
 * of two gateways deciding one request only one wins (the other gets null, as the port says). A
 * remembered rule is written after the decision it comes with: a crash between the two leaves the
 * decision without its rule, and the tool is asked again next time — never a rule nobody decided.
 */
import type { KV } from "@nats-io/kv";
import type { ApprovalRecord, ApprovalRule, ApprovalStore } from "../approvals.ts";
import { dec, isWrongLastSequence, type NatsContext, token } from "./context.ts";
import { isTombstone } from "./plugin-state.ts";

type Decision = Parameters<ApprovalStore["decideApproval"]>[1];

export async function natsApprovals(ctx: NatsContext): Promise<ApprovalStore> {
  const records: KV = await ctx.bucket("approvals");
  const rules: KV = await ctx.bucket("approval_rules");
  const ruleKey = (agent: string, tool: string) => `${token(agent)}.${token(tool)}`;
  const scan = async <T>(part: string): Promise<T[]> =>
    (await ctx.scan(`KV_${ctx.name(part)}`, `$KV.${ctx.name(part)}.>`, { lastPerSubject: true }))
      .filter((m) => !isTombstone(m))
      .map((m) => dec<T>(m.data));

  /** Decides the record `id` if it is still pending; null otherwise. Retries a lost compare-and-set. */
  const decide = async (id: string, d: Decision): Promise<ApprovalRecord | null> => {
    for (let i = 0; ; i++) {
      const e = await records.get(token(id));
      if (!e || e.operation !== "PUT") return null;
      const r = e.json<ApprovalRecord>();
      if (r.state !== "pending") return null;
      const next: ApprovalRecord = { ...r, state: d.state, decided_at: d.at, decided_by: d.by, remember: d.remember };
      try {
        await records.update(token(id), JSON.stringify(next), e.revision);
        return next;
      } catch (err) {
        if (!isWrongLastSequence(err) || i >= 20) throw err;
      }
    }
  };
  const putRule = (rule: ApprovalRule) =>
    rules.put(
      ruleKey(rule.agent, rule.tool),
      JSON.stringify({ agent: rule.agent, tool: rule.tool, allow: rule.allow, created_at: rule.created_at }),
    );

  return {
    addApproval: (r) =>
      ctx.run("store an approval", async () => {
        await records.create(token(r.id), JSON.stringify(r));
      }),
    decideApproval: (id, d) =>
      ctx.run("store an approval decision", async () => {
        const r = await decide(id, d);
        if (r && d.remember && d.state !== "timeout")
          await putRule({ agent: r.agent, tool: r.tool, allow: d.state === "allowed", created_at: d.at });
        return r;
      }),
    getApproval: (id) =>
      ctx.read("read an approval", async () => {
        const e = await records.get(token(id));
        return e && e.operation === "PUT" ? e.json<ApprovalRecord>() : null;
      }),
    listApprovals: (q) =>
      ctx.read("list approvals", async () =>
        (await scan<ApprovalRecord>("approvals"))
          .filter(
            (r) =>
              (q.state === undefined || r.state === q.state) && (q.session === undefined || r.session === q.session),
          )
          .sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
          .slice(0, q.limit),
      ),
    getApprovalRule: (agent, tool) =>
      ctx.read("read an approval rule", async () => {
        const e = await rules.get(ruleKey(agent, tool));
        return e && e.operation === "PUT" ? e.json<ApprovalRule>() : null;
      }),
    setApprovalRule: (rule) =>
      ctx.write("store an approval rule", async () => {
        await putRule(rule);
      }),
    listApprovalRules: () =>
      ctx.read("list approval rules", async () =>
        (await scan<ApprovalRule>("approval_rules")).sort((a, b) =>
          a.agent === b.agent ? (a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0) : a.agent < b.agent ? -1 : 1,
        ),
      ),
    deleteApprovalRule: (agent, tool) =>
      ctx.write("forget an approval rule", async () => {
        const e = await rules.get(ruleKey(agent, tool));
        if (!e || e.operation !== "PUT") return false;
        await rules.delete(ruleKey(agent, tool));
        return true;
      }),
    expirePendingApprovals: (at, by) =>
      ctx.run("expire pending approvals", async () => {
        let n = 0;
        for (const r of await scan<ApprovalRecord>("approvals")) {
          if (r.state === "pending" && (await decide(r.id, { state: "timeout", at, by, remember: false }))) n++;
        }
        return n;
      }),
  };
}
