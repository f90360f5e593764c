/**
 * The approvals port (src/store/approvals.ts) over SQLite on disk and in memory: the same answers
 * from both; a decision is taken once; a remembered rule is stored with it; what a previous run left
 * pending is closed; SQLite keeps it all across a reopen.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createMemoryStore, openSqliteStore, type ApprovalRecord, type Store } from "../../src/store/index.ts";
import { tempDir } from "../helpers/temp.ts";

const dirs: ReturnType<typeof tempDir>[] = [];
afterAll(() => dirs.forEach((d) => d[Symbol.dispose]()));
const sqlitePath = () => {
  const d = tempDir("exoclaw-approvals-");
  dirs.push(d);
  return join(d.path, "exoclaw.db");
};

const rec = (id: string, over: Partial<ApprovalRecord> = {}): ApprovalRecord => ({
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

for (const [kind, open] of [
  ["memory", () => createMemoryStore()],
  ["sqlite", () => openSqliteStore(sqlitePath())],
] as [string, () => Store][]) {
  describe(`approvals in the ${kind} store`, () => {
    test("a pending request is decided once; the second decision gets null and changes nothing", async () => {
      const s = open();
      await s.approvals.addApproval(rec("a1"));
      expect(await s.approvals.listApprovals({ state: "pending", limit: 10 })).toEqual([rec("a1")]);
      const d = await s.approvals.decideApproval("a1", { state: "allowed", at: 2000, by: "operator", remember: false });
      expect(d).toMatchObject({ id: "a1", state: "allowed", decided_at: 2000, decided_by: "operator" });
      expect(await s.approvals.decideApproval("a1", { state: "denied", at: 3000, by: "operator", remember: true })).toBeNull();
      expect(await s.approvals.getApproval("a1")).toMatchObject({ state: "allowed", remember: false });
      expect(await s.approvals.getApprovalRule("main", "http_get")).toBeNull();
      expect(await s.approvals.decideApproval("nope", { state: "allowed", at: 1, by: "x", remember: false })).toBeNull();
      await s.close();
    });

    test("remember stores the rule with the decision, per agent and tool; a timeout never becomes a rule", async () => {
      const s = open();
      await s.approvals.addApproval(rec("a1"));
      await s.approvals.addApproval(rec("a2", { tool: "echo" }));
      await s.approvals.decideApproval("a1", { state: "denied", at: 2000, by: "operator", remember: true });
      await s.approvals.decideApproval("a2", { state: "timeout", at: 2000, by: "timeout", remember: true });
      expect(await s.approvals.getApprovalRule("main", "http_get")).toEqual({ agent: "main", tool: "http_get", allow: false, created_at: 2000 });
      expect(await s.approvals.getApprovalRule("other", "http_get")).toBeNull();
      expect(await s.approvals.getApprovalRule("main", "echo")).toBeNull();
      await s.approvals.setApprovalRule({ agent: "main", tool: "http_get", allow: true, created_at: 5000 });
      expect((await s.approvals.getApprovalRule("main", "http_get"))?.allow).toBe(true);
      await s.approvals.setApprovalRule({ agent: "alpha", tool: "zeta", allow: false, created_at: 6000 });
      expect((await s.approvals.listApprovalRules()).map((r) => `${r.agent}/${r.tool}/${r.allow}`)).toEqual(["alpha/zeta/false", "main/http_get/true"]);
      expect(await s.approvals.deleteApprovalRule("main", "http_get")).toBe(true);
      expect(await s.approvals.deleteApprovalRule("main", "http_get")).toBe(false);
      expect(await s.approvals.getApprovalRule("main", "http_get")).toBeNull();
      await s.close();
    });

    test("lists newest first, by state and session; a restart closes what was pending", async () => {
      const s = open();
      await s.approvals.addApproval(rec("a1", { created_at: 1 }));
      await s.approvals.addApproval(rec("a2", { created_at: 2, session: "other" }));
      await s.approvals.addApproval(rec("a3", { created_at: 3, state: "allowed", decided_at: 3, decided_by: "remembered" }));
      expect((await s.approvals.listApprovals({ limit: 10 })).map((r) => r.id)).toEqual(["a3", "a2", "a1"]);
      expect((await s.approvals.listApprovals({ limit: 10, session: "other" })).map((r) => r.id)).toEqual(["a2"]);
      expect((await s.approvals.listApprovals({ limit: 1 })).map((r) => r.id)).toEqual(["a3"]);
      expect(await s.approvals.expirePendingApprovals(9, "restart")).toBe(2);
      expect(await s.approvals.listApprovals({ limit: 10, state: "pending" })).toEqual([]);
      expect(await s.approvals.getApproval("a1")).toMatchObject({ state: "timeout", decided_by: "restart", decided_at: 9 });
      await s.close();
    });
  });
}

test("sqlite keeps requests, decisions and rules across a reopen", async () => {
  const path = sqlitePath();
  const a = openSqliteStore(path);
  await a.approvals.addApproval(rec("a1"));
  await a.approvals.decideApproval("a1", { state: "allowed", at: 2000, by: "owner:telegram:bot:7", remember: true });
  await a.close();
  const b = openSqliteStore(path);
  expect(await b.approvals.getApproval("a1")).toMatchObject({ state: "allowed", decided_by: "owner:telegram:bot:7", remember: true });
  expect((await b.approvals.getApprovalRule("main", "http_get"))?.allow).toBe(true);
  await b.close();
});
