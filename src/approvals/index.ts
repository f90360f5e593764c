/**
 * Approvals (issue 16): tool calls that wait for the operator's yes — the policy (which calls), the
 * broker (waiting, deciding, storing) and the per-turn gate around an agent's tools.
 */
export { ApprovalBroker, type AskRequest, type BrokerDeps, type PendingApproval, summarize } from "./broker.ts";
export { CANCELLED, DENIED, gateToolBox, type GateContext, TIMED_OUT } from "./gate.ts";
export { approvalReason, type Effect, effectsOf, isTaintSource, settingOf } from "./policy.ts";
export { configuredSecrets, gateTurn, initialTaint, type TurnGateDeps } from "./turn.ts";
export { type ButtonPress, OwnerApprovals, type OwnerDeps } from "./owners.ts";
export { ApprovalsModule, type ApprovalsModuleDeps } from "./module.ts";
