/**
 * The approvals port: tool calls that waited for the operator's yes and what was decided, and the
 * decisions remembered per agent and tool (issue 16). Implemented over SQLite (./sqlite/approvals.ts)
 * and in memory (memoryApprovals in ./memory.ts); both pass tests/store/contract/approvals.ts.
 */

/** pending: waiting; allowed / denied: the operator's answer (or a remembered one); timeout: no answer in time (= denied). */
export type ApprovalState = "pending" | "allowed" | "denied" | "timeout";

export interface ApprovalRecord {
  id: string;
  session: string;
  agent: string;
  /** The name the model called it by. */
  tool: string;
  /** The call's input, scrubbed of secrets and cut short (what the operator is shown). */
  input: string;
  /** "always", or "untrusted after <source>". */
  why: string;
  state: ApprovalState;
  created_at: number;
  /** When the request stops waiting (created_at + the timeout). */
  expires_at: number;
  decided_at: number | null;
  /** Who decided: "operator", "owner:<person>", "remembered", "timeout", "shutdown". */
  decided_by: string | null;
  /** The decision was stored as a rule for this agent and tool. */
  remember: boolean;
}

export interface ApprovalRule {
  agent: string;
  tool: string;
  allow: boolean;
  created_at: number;
}

export interface ApprovalStore {
  /** Stores a new record (pending, or already decided when a remembered rule answered). */
  addApproval(r: ApprovalRecord): Promise<void>;
  /**
   * Decides a pending record; null when it is not pending (unknown, decided already, expired).
   * A `rule` is stored in the same transaction.
   */
  decideApproval(
    id: string,
    d: { state: Exclude<ApprovalState, "pending">; at: number; by: string; remember: boolean },
  ): Promise<ApprovalRecord | null>;
  getApproval(id: string): Promise<ApprovalRecord | null>;
  /** Newest first; `state` filters, `session` too. */
  listApprovals(q: { state?: ApprovalState; session?: string; limit: number }): Promise<ApprovalRecord[]>;
  getApprovalRule(agent: string, tool: string): Promise<ApprovalRule | null>;
  setApprovalRule(rule: ApprovalRule): Promise<void>;
  /** Every remembered decision, by agent then tool. */
  listApprovalRules(): Promise<ApprovalRule[]>;
  /** Forgets a remembered decision (the tool is asked again); false when there was none. */
  deleteApprovalRule(agent: string, tool: string): Promise<boolean>;
  /** Every pending record becomes `timeout` decided by `by` (a restart: nobody waits for them any more); returns how many. */
  expirePendingApprovals(at: number, by: string): Promise<number>;
}
