/** Model answers in the providers' own stream formats, for the fake upstream the binary talks to. */
import { type RecordedRequest, sse } from "../../helpers/fake-upstream.ts";

/** One streamed Chat Completions answer, as OpenAI sends it (usage chunk, then `[DONE]`). */
export const openaiReply = (text: string, model = "gpt-4o-mini-2024-07-18") => {
  const chunk = (delta: unknown, finish: string | null) => ({
    id: "chatcmpl-bin",
    object: "chat.completion.chunk",
    created: 1727895263,
    model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    usage: null,
  });
  return sse([
    chunk({ role: "assistant", content: "" }, null),
    chunk({ content: text }, null),
    chunk({}, "stop"),
    {
      id: "chatcmpl-bin",
      object: "chat.completion.chunk",
      created: 1727895263,
      model,
      choices: [],
      usage: { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 },
    },
    "[DONE]",
  ]);
};

/** One streamed Chat Completions answer that calls tool `name` with `args` (finish_reason "tool_calls"). */
export const openaiToolCall = (name: string, args: unknown, id = "call_1") => {
  const chunk = (delta: unknown, finish: string | null) => ({
    id: "c",
    object: "chat.completion.chunk",
    created: 1,
    model: "gpt-4o-mini",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  return sse([
    chunk(
      {
        role: "assistant",
        tool_calls: [{ index: 0, id, type: "function", function: { name, arguments: JSON.stringify(args) } }],
      },
      null,
    ),
    chunk({}, "tool_calls"),
    "[DONE]",
  ]);
};

/** One streamed Anthropic Messages answer. */
export const anthropicReply = (text: string) =>
  sse(
    [
      {
        type: "message_start",
        message: {
          id: "m",
          type: "message",
          role: "assistant",
          model: "claude",
          content: [],
          stop_reason: null,
          usage: { input_tokens: 5, output_tokens: 1 },
        },
      },
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } },
      { type: "content_block_stop", index: 0 },
      { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 3 } },
      { type: "message_stop" },
    ],
    { named: true },
  );

/** The text of the last user message of an Anthropic or OpenAI request body. */
export function lastUserText(req: RecordedRequest): string {
  const messages = (req.body?.messages ?? []) as { role: string; content: unknown }[];
  const last = messages.filter((m) => m.role === "user").at(-1);
  if (!last) return "";
  if (typeof last.content === "string") return last.content;
  return (last.content as { type: string; text?: string }[]).map((p) => p.text ?? "").join("");
}
