/**
 * In-memory Store for tests and throwaway gateways; same semantics as sqlite, nothing persists. One
 * function per port, composed by createMemoryStore; the conversations port reaches the inbox's map
 * only to save a turn's reply with its history.
 */
import type { NewMessage, SessionAddress, StoredMessage } from "../core/index.ts";
import { decodeCursor, encodeCursor, isAfterCursor } from "./cursor.ts";
import type {
  ApprovalRecord,
  ApprovalRule,
  ApprovalStore,
  Fact,
  FactQuery,
  HistoryQuery,
  InboundRecord,
  InboundReply,
  Pairing,
  PendingInbound,
  SessionInfo,
  SessionPage,
  SessionQuery,
  Store,
  ConversationStore,
  FactStore,
  InboxStore,
  LeaseFence,
  SessionLeases,
  PairingStore,
  PluginStateStore,
  UsageLedger,
  UsageQuery,
  UsageRecord,
  UsageTotals,
} from "./types.ts";
import { firstExceeded, sumRecords } from "./usage.ts";
import { searchWords } from "./words.ts";
import { StoreError } from "./errors.ts";

type InboundRow = PendingInbound & { done: boolean };
/** A session's lease (kept after release, so its token only grows). */
type LeaseRow = { holder: string; token: number; expires_at: number };
const clone = <T>(v: T): T => structuredClone(v);

export function createMemoryStore(opts: { now?: () => number } = {}): Store {
  const now = opts.now ?? Date.now;
  const inbound = new Map<string, InboundRow>();
  const leases = new Map<string, LeaseRow>();
  return {
    kind: "memory",
    location: "memory",
    ...memoryConversations(now, inbound, leases),
    ...memoryLeases(now, leases),
    ...memoryUsageLedger(),
    ...memoryPluginState(),
    ...memoryInbox(inbound, now),
    ...memoryPairings(),
    ...memoryFacts(now),
    ...memoryApprovals(),
    async close() {},
  };
}

/** Sessions and messages; `inbound` is the inbox's, for the reply saved with a turn; `leases` the leases', for fenced appends. */
export function memoryConversations(
  now: () => number,
  inbound: Map<string, InboundRow>,
  leases: Map<string, LeaseRow> = new Map(),
): ConversationStore {
  const sessions = new Map<string, SessionInfo>();
  const messages = new Map<string, StoredMessage[]>();
  const versions = new Map<string, number>();
  let lastVersion = 0;
  return {
    async appendMessages(addr: SessionAddress, msgs: NewMessage[], reply?: InboundReply, fence?: LeaseFence) {
      if (fence && leases.get(addr.key)?.token !== fence.token) {
        throw new StoreError(
          `the turn's lease on session ${addr.key} was taken over by another worker (it ran past its lease); its messages were not stored`,
        );
      }
      versions.set(addr.key, ++lastVersion);
      const t = now();
      let s = sessions.get(addr.key);
      if (!s) {
        s = { ...addr, created_at: t, updated_at: t, message_count: 0 };
        sessions.set(addr.key, s);
        messages.set(addr.key, []);
      }
      const list = messages.get(addr.key)!;
      const base = list.length;
      const stored: StoredMessage[] = msgs.map((m, i) => ({
        ...clone(m),
        session: addr.key,
        seq: base + i + 1,
        created_at: t,
      }));
      list.push(...stored);
      s.message_count = list.length;
      s.updated_at = t;
      if (reply) {
        const r = inbound.get(reply.inbound);
        if (r && !r.done) r.reply = reply.text;
      }
      return clone(stored);
    },
    async getSession(key) {
      const s = sessions.get(key);
      return s ? { ...s } : null;
    },
    async listSessions(q: SessionQuery): Promise<SessionPage> {
      const cursor = q.cursor === undefined ? null : decodeCursor(q.cursor);
      const all = [...sessions.values()]
        .filter(
          (s) => (q.agent === undefined || s.agent === q.agent) && (q.channel === undefined || s.channel === q.channel),
        )
        .filter((s) => cursor === null || isAfterCursor(s, cursor))
        .sort((a, b) => b.updated_at - a.updated_at || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const page = all.slice(0, q.limit).map((s) => ({ ...s }));
      const last = page.at(-1);
      return { sessions: page, next_cursor: all.length > q.limit && last ? encodeCursor(last) : null };
    },
    async history(key, q: HistoryQuery) {
      const list = messages.get(key) ?? [];
      const upto = q.before === undefined ? list.length : Math.max(0, Math.min(list.length, q.before - 1));
      return clone(list.slice(Math.max(0, upto - q.limit), upto));
    },
    async sessionVersion(key) {
      return versions.get(key) ?? 0;
    },
    async resetSession(key) {
      const list = messages.get(key);
      if (!list) return null;
      versions.delete(key);
      sessions.delete(key);
      messages.delete(key);
      return list.length;
    },
    async countSessions() {
      return sessions.size;
    },
  };
}

/** Session leases in memory (one process: the turn queue orders turns already; this keeps the port's semantics). */
export function memoryLeases(now: () => number, leases: Map<string, LeaseRow> = new Map()): SessionLeases {
  return {
    async acquireLease(session, holder, ttlMs) {
      const t = now();
      const l = leases.get(session);
      if (l && l.expires_at > t) return null;
      const token = (l?.token ?? 0) + 1;
      leases.set(session, { holder, token, expires_at: t + ttlMs });
      return token;
    },
    async renewLease(session, token, ttlMs) {
      const l = leases.get(session);
      if (!l || l.token !== token) return false;
      l.expires_at = now() + ttlMs;
      return true;
    },
    async releaseLease(session, token) {
      const l = leases.get(session);
      if (l && l.token === token) l.expires_at = 0;
    },
  };
}

export function memoryUsageLedger(): UsageLedger {
  const usage: UsageRecord[] = [];
  return {
    async recordUsage(r) {
      usage.push({ ...r });
    },
    async updateUsage(call, u) {
      const r = usage.find((x) => x.call === call);
      if (r) Object.assign(r, u);
    },
    async sumUsage(q: UsageQuery): Promise<UsageTotals> {
      return sumRecords(usage, q);
    },
    // Synchronous from the check to the push: nothing can interleave in one process.
    async reserveUsage(r, limits) {
      const over = firstExceeded(r, limits, (q) => sumRecords(usage, q));
      if (over === null) usage.push({ ...r });
      return over;
    },
  };
}

export function memoryPluginState(): PluginStateStore {
  const kv = new Map<string, string>();
  return {
    async kvGet(plugin, key) {
      return kv.get(`${plugin}\u0000${key}`) ?? null;
    },
    async kvSet(plugin, key, value) {
      if (value === null) kv.delete(`${plugin}\u0000${key}`);
      else kv.set(`${plugin}\u0000${key}`, value);
    },
    async kvStats(plugin) {
      const prefix = `${plugin}\u0000`;
      let entries = 0;
      let bytes = 0;
      for (const [k, value] of kv) {
        if (!k.startsWith(prefix)) continue;
        entries++;
        bytes += Buffer.byteLength(k) - Buffer.byteLength(prefix) + Buffer.byteLength(value);
      }
      return { entries, bytes };
    },
  };
}

export function memoryInbox(inbound: Map<string, InboundRow> = new Map(), now: () => number = Date.now): InboxStore {
  const claims = new Map<string, { holder: string; until: number }>();
  return {
    async acceptInbound(r: InboundRecord) {
      if (inbound.has(r.id)) return false;
      inbound.set(r.id, { ...r, attempts: 0, last_error: null, reply: null, next_at: 0, dead_at: null, done: false });
      return true;
    },
    async pendingInbound(limit) {
      // Map order is insertion order: the tie-break of equal receive times, as rowid is in SQLite.
      return [...inbound.values()]
        .filter((r) => !r.done)
        .sort((a, b) => a.received_at - b.received_at)
        .slice(0, limit)
        .map(({ done: _done, ...r }) => r);
    },
    async getInbound(id) {
      const r = inbound.get(id);
      if (!r || r.done) return null;
      const { done: _done, ...rest } = r;
      return { ...rest };
    },
    async dueInbound(now, limit) {
      return [...inbound.values()]
        .filter((r) => !r.done && r.dead_at === null && (r.attempts > 0 || r.reply !== null) && r.next_at <= now)
        .sort((a, b) => a.next_at - b.next_at || a.received_at - b.received_at)
        .slice(0, limit)
        .map(({ done: _done, ...r }) => r);
    },
    async nextInboundAt(after) {
      let next: number | null = null;
      for (const r of inbound.values())
        if (
          !r.done &&
          r.dead_at === null &&
          (r.attempts > 0 || r.reply !== null) &&
          r.next_at > after &&
          (next === null || r.next_at < next)
        )
          next = r.next_at;
      return next;
    },
    async countInbound() {
      let pending = 0;
      let dead = 0;
      for (const r of inbound.values()) if (!r.done) r.dead_at === null ? pending++ : dead++;
      return { pending, dead };
    },
    async saveInboundReply(id, reply) {
      const r = inbound.get(id);
      if (r && !r.done) r.reply = reply;
    },
    async completeInbound(id) {
      const r = inbound.get(id);
      if (!r || r.done) return false;
      Object.assign(r, { done: true, payload: "", reply: null });
      return true;
    },
    async failInbound(id, f) {
      const r = inbound.get(id);
      if (r && !r.done) {
        r.attempts++;
        r.last_error = f.error;
        if (f.retry_at === null) r.dead_at = f.at;
        else Object.assign(r, { next_at: f.retry_at, dead_at: null });
      }
    },
    async requeueInbound(id, at) {
      const r = inbound.get(id);
      if (!r || r.done) return false;
      Object.assign(r, { attempts: 0, next_at: at, dead_at: null });
      return true;
    },
    async claimInbound(id, holder, ttlMs) {
      const r = inbound.get(id);
      if (!r || r.done) return false;
      const c = claims.get(id);
      const t = now();
      if (c && c.until > t && c.holder !== holder) return false;
      claims.set(id, { holder, until: t + ttlMs });
      return true;
    },
    async releaseInbound(id, holder) {
      if (claims.get(id)?.holder === holder) claims.delete(id);
    },
  };
}

export function memoryPairings(): PairingStore {
  const pairings = new Map<string, Pairing>();
  return {
    async getPairing(person) {
      const p = pairings.get(person);
      return p ? { ...p } : null;
    },
    async pairingByCode(code) {
      for (const p of pairings.values()) if (p.code === code) return { ...p };
      return null;
    },
    async savePairing(p) {
      pairings.set(p.person, { ...p });
    },
    async listPairings(q) {
      return [...pairings.values()]
        .filter(
          (p) =>
            (q.channel === undefined || p.channel === q.channel) && (q.status === undefined || p.status === q.status),
        )
        .sort((a, b) => a.created_at - b.created_at)
        .map((p) => ({ ...p }));
    },
    async deletePairing(person) {
      return pairings.delete(person);
    },
  };
}

export function memoryFacts(now: () => number): FactStore {
  const facts: Fact[] = [];
  return {
    async addFact(agent, person, text) {
      const existing = facts.find((f) => f.agent === agent && f.person === person && f.text === text);
      if (existing) return { ...existing };
      const fact = { id: facts.length + 1, agent, person, text, created_at: now() };
      facts.push(fact);
      return { ...fact };
    },
    async searchFacts(q: FactQuery) {
      const words = searchWords(q.query);
      return facts
        .filter((f) => f.agent === q.agent && (q.person === undefined || f.person === q.person))
        .map((f) => {
          const have = new Set(searchWords(f.text, 1000));
          return { ...f, score: words.filter((w) => have.has(w)).length };
        })
        .filter((f) => f.score > 0)
        .sort((a, b) => b.score - a.score || b.id - a.id)
        .slice(0, q.limit);
    },
  };
}

/** Tool calls that waited for the operator and the decisions remembered per agent and tool. */
export function memoryApprovals(): ApprovalStore {
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
      if (d.remember && d.state !== "timeout")
        rules.set(ruleKey(r.agent, r.tool), {
          agent: r.agent,
          tool: r.tool,
          allow: d.state === "allowed",
          created_at: d.at,
        });
      return { ...r };
    },
    async getApproval(id) {
      const r = records.get(id);
      return r ? { ...r } : null;
    },
    async listApprovals(q) {
      return [...records.values()]
        .filter(
          (r) => (q.state === undefined || r.state === q.state) && (q.session === undefined || r.session === q.session),
        )
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
      return [...rules.values()]
        .sort((a, b) => (a.agent === b.agent ? (a.tool < b.tool ? -1 : 1) : a.agent < b.agent ? -1 : 1))
        .map((r) => ({ ...r }));
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
