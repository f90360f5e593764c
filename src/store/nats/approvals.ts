/**
 * Approvals on NATS: one KV bucket of records (key: the approval id) and one of remembered rules
 * (key: `<agent>.<tool>`), both escaped. A decision is a compare-and-set on the record's revision, so
 * of two gateways deciding one request only one wins (the other gets null, as the port says). A
 * remembered rule is written after the decision it comes with: a crash between the two leaves the
 * decision without its rule, and the tool is asked again next time — never a rule nobody decided.
 *
 * Several gateways share the bucket, so a pending request records its owner (`owner`, the gateway's
 * stable name: host and state directory) and each owner with requests keeps a heartbeat in the
 * `approval_owners` bucket. At start-up a gateway expires only what can never be answered: its own
 * (a previous run's orphans), those of an owner whose heartbeat stopped, and those past their own
 * deadline — never another running gateway's requests, which its turns still wait on.
 */
import type { KV } from "@nats-io/kv";
import { randomUUID } from "node:crypto";
import type { ApprovalRecord, ApprovalRule, ApprovalStore } from "../approvals.ts";
import { dec, isWrongLastSequence, type NatsContext, token } from "./context.ts";
import { isTombstone } from "./plugin-state.ts";

type Decision = Parameters<ApprovalStore["decideApproval"]>[1];

/** A record as stored: its owner gateway (absent on records written before owners were kept). */
type Stored = ApprovalRecord & { owner?: string };

export interface ApprovalOwnership {
  /** This gateway's stable name (default: a random one, so nothing is taken for this gateway's own). */
  owner?: string;
  /** Between heartbeats of an owner with requests (default 2 s). */
  heartbeatMs?: number;
  /** An owner not heard of for this long is gone (default 5 heartbeats). */
  goneAfterMs?: number;
}

const strip = ({ owner: _o, ...r }: Stored): ApprovalRecord => r;

export async function natsApprovals(
  ctx: NatsContext,
  own: ApprovalOwnership = {},
): Promise<ApprovalStore & { stopHeartbeat(): void }> {
  const [records, rules, owners]: [KV, KV, KV] = await Promise.all([
    ctx.bucket("approvals"),
    ctx.bucket("approval_rules"),
    ctx.bucket("approval_owners"),
  ]);
  const me = own.owner ?? `anonymous:${randomUUID()}`;
  const every = own.heartbeatMs ?? 2000;
  const goneAfter = own.goneAfterMs ?? 5 * every;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const beat = () => owners.put(token(me), JSON.stringify({ owner: me, at: ctx.now() }));
  /** Heartbeats from this gateway's first request (or start-up check) on, until the store closes. */
  const beating = async () => {
    if (heartbeat) return;
    heartbeat = setInterval(() => void beat().catch(() => {}), every);
    heartbeat.unref?.();
    await ctx.again(beat);
  };
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
      const r = strip(e.json<Stored>());
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
        await beating();
        const stored: Stored = { ...r, owner: me };
        const mine = async () => {
          const e = await records.get(token(r.id));
          return e?.operation === "PUT" ? { value: 0 } : null;
        };
        await ctx.again(() => records.create(token(r.id), JSON.stringify(stored)), mine);
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
        return e && e.operation === "PUT" ? strip(e.json<Stored>()) : null;
      }),
    listApprovals: (q) =>
      ctx.read("list approvals", async () =>
        (await scan<Stored>("approvals"))
          .map(strip)
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
        await beating();
        const alive = new Map<string, number>();
        for (const m of await ctx.scan(`KV_${ctx.name("approval_owners")}`, `$KV.${ctx.name("approval_owners")}.>`, {
          lastPerSubject: true,
        }))
          if (!isTombstone(m)) {
            const hb = dec<{ owner: string; at: number }>(m.data);
            alive.set(hb.owner, hb.at);
          }
        const now = ctx.now();
        // Another running gateway's request is still waited on by its turn: left to it.
        const orphan = (r: Stored) =>
          r.owner === undefined ||
          r.owner === me ||
          r.expires_at <= at ||
          now - (alive.get(r.owner) ?? Number.NEGATIVE_INFINITY) > goneAfter;
        let n = 0;
        for (const r of await scan<Stored>("approvals")) {
          if (r.state === "pending" && orphan(r) && (await decide(r.id, { state: "timeout", at, by, remember: false })))
            n++;
        }
        return n;
      }),
    stopHeartbeat: () => clearInterval(heartbeat),
  };
}
