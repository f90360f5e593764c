export {
  type ApprovalNote,
  type ApprovalRequestEvent,
  runTurn,
  type StreamFn,
  type ToolBox,
  type ToolCallContext,
  type ToolOrigin,
  type ToolRunResult,
  type TurnEvent,
  type TurnResult,
  type TurnStopReason,
} from "./loop.ts";
export { providerStream } from "./provider-factory.ts";
export { ProviderError } from "./provider-error.ts";
export { AgentRunner, type RunOptions, type TurnOutcome, type TurnRequest } from "./runner.ts";
export { BusyError, type TurnLimits, type WhenBusy } from "./turn-queue.ts";
export { createToolBox } from "./toolbox.ts";
export type { ChatMessage, ChatRequest, Provider, ProviderId, StreamEvent, ToolSpec } from "./types.ts";
