/**
 * The contract of approvals (src/store/approvals.ts): every implementation of the port runs it
 * (tests/store/sqlite.test.ts, memory.test.ts; later the NATS store). A decision is taken once; a
 * remembered rule is stored with it; what a previous run left pending is closed.
 */
import { describe, expect, test } from "bun:test";
import type { ApprovalRecord, ApprovalStore } from "../../../src/store/index.ts";
import { type MakeHarness } from "./harness.ts";

export const approvalRecord = (id: string, over: Partial<ApprovalRecord> = {}): ApprovalRecord => ({
  id,
  session: "main:ws:local:a",
  agent: "main",
  tool: "http_get",
  input: '{"url":"http://x"}',
  why: "always",
  state: "pending",
  created_at: 1000,
  expires_at: 301_000,
  decided_at: null,
  decided_by: null,
  remember: false,
  ...over,
});
const rec = approvalRecord;

export function approvalsContract(name: string, make: MakeHarness<ApprovalStore>): void {
  describe(`Approvals contract: ${name}`, () => {
    test("approvals: a pending request is decided once; the second decision gets null and changes nothing", async () => {
      await using h = await make();
      const s = h.store;
      await s.addApproval(rec("a1"));
      expect(await s.listApprovals({ state: "pending", limit: 10 })).toEqual([rec("a1")]);
      const d = await s.decideApproval("a1", { state: "allowed", at: 2000, by: "operator", remember: false });
      expect(d).toMatchObject({ id: "a1", state: "allowed", decided_at: 2000, decided_by: "operator" });
      expect(await s.decideApproval("a1", { state: "denied", at: 3000, by: "operator", remember: true })).toBeNull();
      expect(await s.getApproval("a1")).toMatchObject({ state: "allowed", remember: false });
      expect(await s.getApprovalRule("main", "http_get")).toBeNull();
      expect(await s.decideApproval("nope", { state: "allowed", at: 1, by: "x", remember: false })).toBeNull();
      expect(await s.getApproval("nope")).toBeNull();
    });

    test("approvals: remember stores the rule with the decision, per agent and tool; a timeout never becomes a rule", async () => {
      await using h = await make();
      const s = h.store;
      await s.addApproval(rec("a1"));
      await s.addApproval(rec("a2", { tool: "echo" }));
      await s.decideApproval("a1", { state: "denied", at: 2000, by: "operator", remember: true });
      await s.decideApproval("a2", { state: "timeout", at: 2000, by: "timeout", remember: true });
      expect(await s.getApprovalRule("main", "http_get")).toEqual({
        agent: "main",
        tool: "http_get",
        allow: false,
        created_at: 2000,
      });
      expect(await s.getApprovalRule("other", "http_get")).toBeNull();
      expect(await s.getApprovalRule("main", "echo")).toBeNull();
      await s.setApprovalRule({ agent: "main", tool: "http_get", allow: true, created_at: 5000 });
      expect((await s.getApprovalRule("main", "http_get"))?.allow).toBe(true);
      await s.setApprovalRule({ agent: "alpha", tool: "zeta", allow: false, created_at: 6000 });
      expect((await s.listApprovalRules()).map((r) => `${r.agent}/${r.tool}/${r.allow}`)).toEqual([
        "alpha/zeta/false",
        "main/http_get/true",
      ]);
      expect(await s.deleteApprovalRule("main", "http_get")).toBe(true);
      expect(await s.deleteApprovalRule("main", "http_get")).toBe(false);
      expect(await s.getApprovalRule("main", "http_get")).toBeNull();
    });

    test("approvals: listed newest first, by state and session; a restart closes what was pending", async () => {
      await using h = await make();
      const s = h.store;
      await s.addApproval(rec("a1", { created_at: 1 }));
      await s.addApproval(rec("a2", { created_at: 2, session: "other" }));
      await s.addApproval(rec("a3", { created_at: 3, state: "allowed", decided_at: 3, decided_by: "remembered" }));
      expect((await s.listApprovals({ limit: 10 })).map((r) => r.id)).toEqual(["a3", "a2", "a1"]);
      expect((await s.listApprovals({ limit: 10, session: "other" })).map((r) => r.id)).toEqual(["a2"]);
      expect((await s.listApprovals({ limit: 1 })).map((r) => r.id)).toEqual(["a3"]);
      expect(await s.expirePendingApprovals(9, "restart")).toBe(2);
      expect(await s.listApprovals({ limit: 10, state: "pending" })).toEqual([]);
      expect(await s.getApproval("a1")).toMatchObject({ state: "timeout", decided_by: "restart", decided_at: 9 });
      expect(await s.getApproval("a3")).toMatchObject({ state: "allowed", decided_by: "remembered" });
    });
  });
}
