/**
 * One agent turn: stream → collect tool calls → run them in the sandbox → feed the results back →
 * repeat, up to `maxToolRounds`. The stream function is a parameter (STYLE: pi-mono), so the loop is
 * tested with a scripted stream and no HTTP. Never throws: a provider failure ends the turn with
 * stop_reason "error" (or "cancelled" when the signal fired) and the events say why.
 */
import type { NewMessage } from "../core/index.ts";
import { ERROR_TABLE, RPC } from "../protocol/error-codes.ts";
import type { ExoError } from "../lib/errors.ts";
import type { ProviderError } from "./provider-error.ts";
import type { ChatMessage, ChatRequest, StreamEvent, ToolSpec } from "./types.ts";

export type TurnStopReason = "end_turn" | "max_tool_rounds" | "cancelled" | "budget" | "error";

/** Events a caller sees while the turn runs (SPEC §5 chat.event, minus id/session/seq). */
export type TurnEvent =
  | { event: "text"; data: string }
  | { event: "tool_use"; data: { id: string; name: string; input: unknown } }
  | { event: "tool_result"; data: { tool_use_id: string; content: string; is_error: boolean } }
  | { event: "usage"; data: { input_tokens: number; output_tokens: number } }
  /** A tool call waits for the operator (answer with approval.resolve); see src/approvals/. */
  | { event: "approval"; data: ApprovalRequestEvent }
  /** What was decided about a waiting (or remembered) call. */
  | { event: "approval_result"; data: ApprovalNote }
  | { event: "error"; data: { code: number; message: string; provider?: string; data?: unknown } }
  | { event: "done"; data: { stop_reason: TurnStopReason } };

export interface ApprovalRequestEvent {
  id: string;
  tool: string;
  tool_use_id: string;
  /** The call's input, scrubbed of secrets and cut short. */
  input: string;
  /** "always", or "untrusted after <source>". */
  why: string;
  /** The same as `why`, under SPEC §5's name. */
  reason: string;
  expires_at: number;
}

/** A decision about one tool call, kept in the tool message's `meta.approvals` (chat.history shows it). */
export interface ApprovalNote {
  id: string;
  tool: string;
  tool_use_id: string;
  state: "allowed" | "denied" | "timeout";
  /** "operator", "owner:<person>", "remembered", "timeout", "cancelled". */
  by: string;
  why: string;
}

/** What a call may use of the turn: its tool_use id and the turn's event stream. */
export interface ToolCallContext {
  id: string;
  emit: (e: TurnEvent) => void;
}

export interface ToolRunResult {
  content: string;
  is_error: boolean;
  /** Set when the call waited for (or was answered by) an approval decision. */
  approval?: ApprovalNote;
}

/** Where a tool comes from, for approval policies (src/approvals/). */
export type ToolOrigin =
  | { kind: "host" }
  | {
      kind: "plugin";
      plugin: string;
      tool: string;
      /** The plugin reaches the network (the operator granted it hosts): its results are untrusted. */
      network: boolean;
      /** What it declared (describe `effects`); undefined = nothing declared. */
      effects: readonly ("egress" | "mutates")[] | undefined;
    }
  | { kind: "source"; owner: string; tool: string; effects: readonly ("egress" | "mutates")[]; untrusted: boolean };

/** The tools an agent may call, already filtered by its `tools` setting. */
export interface ToolBox {
  specs(): ToolSpec[];
  /** Runs a tool; an unknown tool or a sandbox failure is an error result the model sees. */
  run(name: string, input: unknown, signal: AbortSignal, ctx?: ToolCallContext): Promise<ToolRunResult>;
  /** Where the tool of that name comes from; undefined for an unknown tool. */
  origin?(name: string): ToolOrigin | undefined;
}

export interface TurnInput {
  model: string;
  system: string;
  maxTokens: number;
  maxToolRounds: number;
  /** Earlier messages of the session, oldest first. */
  history: ChatMessage[];
  /** The new user message. */
  user: ChatMessage;
}

export interface TurnResult {
  text: string;
  usage: { input_tokens: number; output_tokens: number };
  stop_reason: TurnStopReason;
  /** What this turn adds to the session, in order (the user message first). */
  messages: NewMessage[];
  error?: ProviderError;
  /** The model that answered last (a fallback step's, when the chain moved on); absent if none announced. */
  answeredBy?: { provider: string; model: string };
}

export type StreamFn = (req: ChatRequest, signal: AbortSignal) => AsyncIterable<StreamEvent>;

export async function runTurn(
  input: TurnInput,
  deps: { stream: StreamFn; tools: ToolBox; signal: AbortSignal; emit: (e: TurnEvent) => void },
): Promise<TurnResult> {
  const { stream, tools, signal, emit } = deps;
  const added: NewMessage[] = [{ role: input.user.role, parts: input.user.parts }];
  const usage = { input_tokens: 0, output_tokens: 0 };
  let text = "";
  let answeredBy: { provider: string; model: string } | undefined;
  const specs = tools.specs();
  const finish = (stop_reason: TurnStopReason, error?: ProviderError): TurnResult => {
    emit({ event: "done", data: { stop_reason } });
    return { text, usage, stop_reason, messages: added, ...(error && { error }), ...(answeredBy && { answeredBy }) };
  };

  for (let round = 0; ; round++) {
    if (signal.aborted) return finish("cancelled");
    const req: ChatRequest = {
      model: input.model,
      system: input.system,
      messages: [...input.history, ...added],
      tools: specs,
      maxTokens: input.maxTokens,
    };
    let roundText = "";
    const calls: { id: string; name: string; input: unknown; signature?: string }[] = [];
    let failure: ProviderError | undefined;
    let refused: ExoError | undefined;
    try {
      events: for await (const ev of stream(req, signal)) {
        switch (ev.type) {
          case "text":
            roundText += ev.text;
            emit({ event: "text", data: ev.text });
            break;
          case "tool_call":
            calls.push({
              id: ev.id,
              name: ev.name,
              input: ev.input,
              ...(ev.signature !== undefined && { signature: ev.signature }),
            });
            emit({ event: "tool_use", data: { id: ev.id, name: ev.name, input: ev.input } });
            break;
          case "usage":
            usage.input_tokens += ev.input_tokens;
            usage.output_tokens += ev.output_tokens;
            emit({ event: "usage", data: { input_tokens: ev.input_tokens, output_tokens: ev.output_tokens } });
            break;
          case "error":
            failure = ev.error;
            break;
          case "model":
            answeredBy = { provider: ev.provider, model: ev.model };
            break;
          case "done":
            break;
          case "refused":
            refused = ev.error;
            break events;
          default: {
            const never: never = ev;
            void never;
          }
        }
      }
    } catch {
      // A stream function never throws (types.ts); one that breaks that promise is a bug.
      emit({ event: "error", data: { code: RPC.INTERNAL, message: "internal error" } });
      return finish("error");
    }
    // The metering decorator refused the call before its request (fail closed).
    if (refused?.code === "budget_exceeded") {
      emit({
        event: "error",
        data: {
          code: RPC.BUDGET_EXCEEDED,
          message: refused.message,
          ...(refused.data !== undefined && { data: refused.data }),
        },
      });
      return finish("budget");
    }
    if (refused) {
      // The ledger could not be written (a read-only or full store: StoreError says which file and
      // that nothing was written; found by tests/faults/store.test.ts, which got "internal error").
      const known = refused.code !== "internal";
      emit({
        event: "error",
        data: {
          code: known ? ERROR_TABLE[refused.code].rpc : RPC.INTERNAL,
          message: known ? refused.message : "internal error",
        },
      });
      return finish("error");
    }
    text += roundText;
    const assistantParts: NewMessage["parts"] = [
      ...(roundText ? [{ type: "text" as const, text: roundText }] : []),
      ...calls.map((c) => ({ type: "tool_use" as const, ...c })),
    ];
    // Keep what the model said even when the stream failed, so history shows the partial answer;
    // tool calls of a failed round are dropped (they will not be run, so they would dangle).
    const kept = failure ? assistantParts.filter((p) => p.type === "text") : assistantParts;
    if (kept.length > 0) added.push({ role: "assistant", parts: kept });
    if (failure) {
      if (failure.reason === "aborted" || signal.aborted) return finish("cancelled", failure);
      emit({
        event: "error",
        data: { code: RPC.PROVIDER_ERROR, message: failure.message, provider: failure.provider },
      });
      return finish("error", failure);
    }
    if (calls.length === 0) return finish("end_turn");
    if (round >= input.maxToolRounds) {
      // The model asked for tools but the budget of rounds is spent: answer the calls as refused so
      // the stored history stays well-formed for the next turn.
      added.push({
        role: "tool",
        parts: calls.map((c) => ({
          type: "tool_result" as const,
          tool_use_id: c.id,
          content: "not run: max_tool_rounds reached",
          is_error: true,
        })),
      });
      return finish("max_tool_rounds");
    }
    const results: NewMessage["parts"] = [];
    const approvals: ApprovalNote[] = [];
    for (const c of calls) {
      const r: ToolRunResult = signal.aborted
        ? { content: "cancelled", is_error: true }
        : await tools.run(c.name, c.input, signal, { id: c.id, emit });
      if (r.approval) approvals.push(r.approval);
      emit({ event: "tool_result", data: { tool_use_id: c.id, content: r.content, is_error: r.is_error } });
      results.push({ type: "tool_result", tool_use_id: c.id, content: r.content, is_error: r.is_error });
    }
    // Approval decisions go with the results they decided, so the session's history shows them.
    added.push({ role: "tool", parts: results, ...(approvals.length > 0 && { meta: { approvals } }) });
  }
}
