/** The approvals port in memory (./approvals.ts), for `store.kind = "memory"` and tests. */
import type { ApprovalRecord, ApprovalRule, ApprovalStore } from "./approvals.ts";

export function createMemoryApprovals(): ApprovalStore {
  const records = new Map<string, ApprovalRecord>();
  const rules = new Map<string, ApprovalRule>();
  const ruleKey = (agent: string, tool: string) => JSON.stringify([agent, tool]);
  return {
    async addApproval(r) {
      records.set(r.id, { ...r });
    },
    async decideApproval(id, d) {
      const r = records.get(id);
      if (!r || r.state !== "pending") return null;
      Object.assign(r, { state: d.state, decided_at: d.at, decided_by: d.by, remember: d.remember });
      if (d.remember && d.state !== "timeout") rules.set(ruleKey(r.agent, r.tool), { agent: r.agent, tool: r.tool, allow: d.state === "allowed", created_at: d.at });
      return { ...r };
    },
    async getApproval(id) {
      const r = records.get(id);
      return r ? { ...r } : null;
    },
    async listApprovals(q) {
      return [...records.values()]
        .filter((r) => (q.state === undefined || r.state === q.state) && (q.session === undefined || r.session === q.session))
        .sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1))
        .slice(0, q.limit)
        .map((r) => ({ ...r }));
    },
    async getApprovalRule(agent, tool) {
      const r = rules.get(ruleKey(agent, tool));
      return r ? { ...r } : null;
    },
    async setApprovalRule(rule) {
      rules.set(ruleKey(rule.agent, rule.tool), { ...rule });
    },
    async listApprovalRules() {
      return [...rules.values()].sort((a, b) => (a.agent === b.agent ? (a.tool < b.tool ? -1 : 1) : a.agent < b.agent ? -1 : 1)).map((r) => ({ ...r }));
    },
    async deleteApprovalRule(agent, tool) {
      return rules.delete(ruleKey(agent, tool));
    },
    async expirePendingApprovals(at, by) {
      let n = 0;
      for (const r of records.values()) {
        if (r.state !== "pending") continue;
        Object.assign(r, { state: "timeout", decided_at: at, decided_by: by });
        n++;
      }
      return n;
    },
  };
}
