/**
 * The approvals broker: a tool call that needs the operator's yes is stored as pending, announced
 * (the turn's `chat.event` `approval`, and every listener — the channel owner's buttons), and waits
 * until `resolve` (approval.resolve, `exoclaw approvals allow|deny`, an owner's button), the timeout
 * (denied), or the turn's cancellation (denied). A decision stored as a rule (`remember`) answers the
 * same tool of the same agent from then on without asking. Every decision is stored.
 */
import { randomUUID } from "node:crypto";
import type { ApprovalNote, ApprovalRequestEvent, TurnEvent } from "../agent/index.ts";
import { describeError, ExoError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { scrub } from "../lib/log.ts";
import type { ApprovalRecord, ApprovalStore } from "../store/index.ts";

/** The most of a call's input the operator is shown. */
const MAX_INPUT = 2000;

export interface AskRequest {
  agent: string;
  session: string;
  tool: string;
  tool_use_id: string;
  input: unknown;
  why: string;
  signal: AbortSignal;
  emit?: (e: TurnEvent) => void;
  /** Channel turns: who the turn is for (the owner is told about it). */
  origin?: { channel: string; account: string } | null;
}

/** What a listener (a channel owner's notifier) is given for a new pending request. */
export interface PendingApproval extends ApprovalRecord {
  origin: { channel: string; account: string } | null;
}

export interface BrokerDeps {
  store: ApprovalStore;
  timeoutMs: () => number;
  /** Secret values scrubbed from the input shown. */
  secrets: () => readonly string[];
  log: Logger;
  now?: () => number;
}

interface Waiting {
  record: PendingApproval;
  settle: (r: ApprovalRecord) => void;
}

export class ApprovalBroker {
  private readonly waiting = new Map<string, Waiting>();
  private readonly listeners = new Set<(p: PendingApproval) => void>();
  private readonly now: () => number;

  constructor(private readonly deps: BrokerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Requests left pending by an earlier process can never be answered: they are stored as timed out. */
  async start(): Promise<void> {
    const n = await this.deps.store.expirePendingApprovals(this.now(), "restart");
    if (n > 0) this.deps.log.warn("approvals left pending by the last run were denied", { count: n });
  }

  /** Called for every new pending request (after it is stored). Returns the unsubscribe function. */
  onRequest(fn: (p: PendingApproval) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Pending requests, oldest first. */
  pending(): PendingApproval[] {
    return [...this.waiting.values()].map((w) => ({ ...w.record })).sort((a, b) => a.created_at - b.created_at);
  }

  get(id: string): PendingApproval | undefined {
    const w = this.waiting.get(id);
    return w && { ...w.record };
  }

  /** Waits for a decision; never throws for the operator's silence (a timeout is a decision). */
  async ask(req: AskRequest): Promise<ApprovalNote> {
    const { store } = this.deps;
    const note = (r: ApprovalRecord): ApprovalNote => ({
      id: r.id,
      tool: r.tool,
      tool_use_id: req.tool_use_id,
      state: r.state === "pending" ? "denied" : r.state,
      by: r.decided_by ?? "",
      why: r.why,
    });
    const t = this.now();
    const input = summarize(req.input, this.deps.secrets());
    const base = {
      id: `ap_${randomUUID().replace(/-/g, "").slice(0, 20)}`,
      session: req.session,
      agent: req.agent,
      tool: req.tool,
      input,
      why: req.why,
      created_at: t,
      remember: false,
    };
    const rule = await store.getApprovalRule(req.agent, req.tool);
    if (rule) {
      const r: ApprovalRecord = {
        ...base,
        state: rule.allow ? "allowed" : "denied",
        expires_at: t,
        decided_at: t,
        decided_by: "remembered",
      };
      await store.addApproval(r);
      const n = note(r);
      req.emit?.({ event: "approval_result", data: n });
      return n;
    }
    const record: PendingApproval = {
      ...base,
      state: "pending",
      expires_at: t + this.deps.timeoutMs(),
      decided_at: null,
      decided_by: null,
      origin: req.origin ?? null,
    };
    const { origin: _o, ...stored } = record;
    await store.addApproval(stored);
    const decided = new Promise<ApprovalRecord>((settle) => this.waiting.set(record.id, { record, settle }));
    const event: ApprovalRequestEvent = {
      id: record.id,
      tool: record.tool,
      tool_use_id: req.tool_use_id,
      input,
      why: record.why,
      reason: record.why,
      expires_at: record.expires_at,
    };
    req.emit?.({ event: "approval", data: event });
    this.deps.log.info("tool call waits for approval", {
      approval: record.id,
      session: record.session,
      agent: record.agent,
      tool: record.tool,
      why: record.why,
    });
    for (const fn of this.listeners) {
      try {
        fn({ ...record });
      } catch (e) {
        this.deps.log.warn("approval listener failed", { error: describeError(e) });
      }
    }
    const timer = setTimeout(
      () => void this.finish(record.id, "timeout", "timeout", false).catch(() => {}),
      Math.max(0, record.expires_at - this.now()),
    );
    const onAbort = () => void this.finish(record.id, "denied", "cancelled", false).catch(() => {});
    if (req.signal.aborted) onAbort();
    else req.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const r = await decided;
      const n = note(r);
      req.emit?.({ event: "approval_result", data: n });
      return n;
    } finally {
      clearTimeout(timer);
      req.signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * The operator's (or owner's) answer. Throws ExoError("not_found") for an id that is not waiting
   * (unknown, already decided, timed out), saying which.
   */
  async resolve(id: string, allow: boolean, opts: { remember?: boolean; by?: string } = {}): Promise<ApprovalRecord> {
    const r = await this.finish(id, allow ? "allowed" : "denied", opts.by ?? "operator", opts.remember === true);
    if (r) return r;
    const known = await this.deps.store.getApproval(id);
    if (!known) throw new ExoError("not_found", `no approval request ${id}`, { data: { id } });
    throw new ExoError(
      "not_found",
      `approval request ${id} is not waiting any more: it was ${known.state === "timeout" ? "timed out" : known.state}${known.decided_by ? ` (${known.decided_by})` : ""}`,
      { data: { id, state: known.state } },
    );
  }

  /** Denies every request still waiting, decided by `by` (shutdown: nobody can answer any more). */
  async close(by: string): Promise<void> {
    await Promise.all([...this.waiting.keys()].map((id) => this.finish(id, "denied", by, false).catch(() => {})));
  }

  /** Settles a waiting request once; the store decides who was first (null: not pending). */
  private async finish(
    id: string,
    state: "allowed" | "denied" | "timeout",
    by: string,
    remember: boolean,
  ): Promise<ApprovalRecord | null> {
    const w = this.waiting.get(id);
    if (!w) return null;
    this.waiting.delete(id);
    let r: ApprovalRecord | null;
    try {
      r = await this.deps.store.decideApproval(id, { state, at: this.now(), by, remember });
    } catch (e) {
      // The decision could not be stored: the call is denied (fail closed) and the caller told.
      w.settle({ ...w.record, state: "denied", decided_at: this.now(), decided_by: "store error" });
      throw e;
    }
    const out = r ?? { ...w.record, state, decided_at: this.now(), decided_by: by, remember };
    this.deps.log.info("approval decided", { approval: id, state: out.state, by, remember });
    w.settle(out);
    return out;
  }
}

/** A call's input as the operator sees it: JSON, scrubbed, at most MAX_INPUT characters. */
export function summarize(input: unknown, secrets: readonly string[]): string {
  let text: string;
  try {
    text = JSON.stringify(input) ?? "null";
  } catch {
    text = String(input);
  }
  text = scrub(text, secrets);
  return text.length > MAX_INPUT ? `${text.slice(0, MAX_INPUT)}… (${text.length} characters)` : text;
}
