/** Approvals on SQLite: the `approvals` and `approval_rules` tables (migration 8); the port is ../approvals.ts. */
import type { ApprovalRecord, ApprovalRule, ApprovalStore } from "../approvals.ts";
import type { Bind, SqliteContext } from "./context.ts";

interface Row {
  id: string;
  session: string;
  agent: string;
  tool: string;
  input: string;
  why: string;
  state: string;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  decided_by: string | null;
  remember: number;
}

const toRecord = (r: Row): ApprovalRecord => ({
  ...r,
  state: r.state as ApprovalRecord["state"],
  remember: r.remember === 1,
});

export function sqliteApprovals(ctx: SqliteContext): ApprovalStore {
  const { db, run } = ctx;
  const insert = db.query(
    `INSERT INTO approvals (id, session, agent, tool, input, why, state, created_at, expires_at, decided_at, decided_by, remember)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const get = db.query<Row, [string]>("SELECT * FROM approvals WHERE id = ?");
  const decide = db.query<Row, [string, number, string, number, string]>(
    "UPDATE approvals SET state = ?, decided_at = ?, decided_by = ?, remember = ? WHERE id = ? AND state = 'pending' RETURNING *",
  );
  const upsertRule = db.query(
    `INSERT INTO approval_rules (agent, tool, allow, created_at) VALUES (?, ?, ?, ?)
     ON CONFLICT(agent, tool) DO UPDATE SET allow = excluded.allow, created_at = excluded.created_at`,
  );
  const getRule = db.query<{ agent: string; tool: string; allow: number; created_at: number }, [string, string]>(
    "SELECT * FROM approval_rules WHERE agent = ? AND tool = ?",
  );
  const del = db.query("DELETE FROM approval_rules WHERE agent = ? AND tool = ?");
  const expire = db.query(
    "UPDATE approvals SET state = 'timeout', decided_at = ?, decided_by = ? WHERE state = 'pending'",
  );
  const decideTx = db.transaction((id: string, d: Parameters<ApprovalStore["decideApproval"]>[1]) => {
    const row = decide.get(d.state, d.at, d.by, d.remember ? 1 : 0, id);
    if (!row) return null;
    if (d.remember && d.state !== "timeout") upsertRule.run(row.agent, row.tool, d.state === "allowed" ? 1 : 0, d.at);
    return toRecord(row);
  });
  return {
    addApproval: (r) =>
      run("store an approval", () => {
        insert.run(
          r.id,
          r.session,
          r.agent,
          r.tool,
          r.input,
          r.why,
          r.state,
          r.created_at,
          r.expires_at,
          r.decided_at,
          r.decided_by,
          r.remember ? 1 : 0,
        );
      }),
    decideApproval: (id, d) => run("store an approval decision", () => decideTx(id, d)),
    getApproval: (id) =>
      run("read an approval", () => {
        const r = get.get(id);
        return r ? toRecord(r) : null;
      }),
    listApprovals: (q) =>
      run("list approvals", () => {
        const where: string[] = [];
        const args: Bind[] = [];
        if (q.state !== undefined) where.push("state = ?"), args.push(q.state);
        if (q.session !== undefined) where.push("session = ?"), args.push(q.session);
        const sql = `SELECT * FROM approvals ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id DESC LIMIT ?`;
        return ctx
          .q<Row>(sql)
          .all(...args, q.limit)
          .map(toRecord);
      }),
    getApprovalRule: (agent, tool) =>
      run("read an approval rule", (): ApprovalRule | null => {
        const r = getRule.get(agent, tool);
        return r ? { agent: r.agent, tool: r.tool, allow: r.allow === 1, created_at: r.created_at } : null;
      }),
    setApprovalRule: (rule) =>
      run("store an approval rule", () => {
        upsertRule.run(rule.agent, rule.tool, rule.allow ? 1 : 0, rule.created_at);
      }),
    listApprovalRules: () =>
      run("list approval rules", () =>
        db
          .query<{ agent: string; tool: string; allow: number; created_at: number }, []>(
            "SELECT * FROM approval_rules ORDER BY agent, tool",
          )
          .all()
          .map((r) => ({ agent: r.agent, tool: r.tool, allow: r.allow === 1, created_at: r.created_at })),
      ),
    deleteApprovalRule: (agent, tool) => run("forget an approval rule", () => del.run(agent, tool).changes > 0),
    expirePendingApprovals: (at, by) => run("expire pending approvals", () => expire.run(at, by).changes),
  };
}
