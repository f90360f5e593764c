/**
 * The OpenAI-compatible endpoint (SPEC §4): `POST /v1/chat/completions` (plain and `stream: true`
 * as SSE in OpenAI's chunk format) and `GET /v1/models`, when `openai_compat = true`. The model is
 * `exoclaw:<agent>`; tools run server-side in the sandbox. With an `x-exoclaw-session` header the
 * turn continues that stored session; without one it is stateless (the request's messages are the
 * history, nothing is stored). A Bearer token is required whenever the gateway has one.
 */
import { sessionKey } from "../core/index.ts";
import type { Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as v from "valibot";
import { BusyError } from "../agent/turn-queue.ts";
import { type AuthVerdict, refusalOf } from "../auth/index.ts";
import type { ErrorCode } from "../lib/errors.ts";
import { ERROR_TABLE } from "../protocol/error-codes.ts";
import type { AgentRunner, TurnOutcome } from "../agent/runner.ts";
import type { ChatMessage } from "../agent/types.ts";

const Content = v.union([
  v.string(),
  v.array(v.looseObject({ type: v.string(), text: v.optional(v.string()) })),
  v.null(),
]);
const Body = v.looseObject({
  model: v.string(),
  messages: v.pipe(v.array(v.looseObject({ role: v.string(), content: v.optional(Content) })), v.minLength(1)),
  stream: v.optional(v.boolean(), false),
  stream_options: v.optional(v.looseObject({ include_usage: v.optional(v.boolean()) })),
});

export interface OpenAICompatDeps {
  runner: AgentRunner;
  agents: () => { id: string }[];
  checkBearer: (header: string | null | undefined, remote: string) => AuthVerdict;
  remoteOf: (req: Request) => string;
  /** Exempts an authenticated request from the idle timeout (RouteAuth.holdOpen): a turn may wait for an approval. */
  holdOpen?: (req: Request) => void;
}

/** OpenAI's error `type` for a kind; the rest are `invalid_request_error`. */
const OAI_TYPE: Partial<Record<ErrorCode, string>> = {
  rate_limited: "rate_limit_error",
  provider_error: "api_error",
  internal: "api_error",
};

/** An error in OpenAI's own body shape (what its SDKs read), with the status of `kind` in the error table. */
const oaiError = (kind: ErrorCode, message: string, code: string | null = null) => ({
  status: ERROR_TABLE[kind].http as ContentfulStatusCode,
  body: { error: { message, type: OAI_TYPE[kind] ?? "invalid_request_error", param: null, code } },
});
const answer = (c: Context, e: ReturnType<typeof oaiError>) => c.json(e.body, e.status);

/**
 * An error the gateway's own middleware answered for a /v1 path (a body over max_payload_bytes, a
 * trickled body, a foreign Origin, an internal failure), re-shaped into OpenAI's error body with the
 * same status and headers, so a client of /v1 reads every error the same way.
 */
export async function asOpenAIError(res: Response): Promise<Response> {
  const body = (await res.json()) as { error: { code: ErrorCode; message: string } };
  const e = oaiError(body.error.code, body.error.message, body.error.code);
  return Response.json(e.body, { status: res.status, headers: res.headers });
}

/**
 * The gateway's turn queue is full: 429 in OpenAI's own shape, with `Retry-After` (seconds) and
 * `retry-after-ms` (which the official SDKs honour) — a client retries after the hint.
 */
function busyResponse(c: Context, e: BusyError): Response {
  c.header("retry-after", String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))));
  c.header("retry-after-ms", String(e.retryAfterMs));
  return answer(c, oaiError(e.code, e.message, "rate_limited"));
}

function text(content: v.InferOutput<typeof Content> | undefined): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content.map((p) => (p.type === "text" ? (p.text ?? "") : "")).join("");
}

const FINISH: Record<TurnOutcome["stop_reason"], string> = {
  end_turn: "stop",
  max_tool_rounds: "length",
  cancelled: "stop",
  budget: "length",
  error: "stop",
};

export function mountOpenAICompat(app: Hono, deps: OpenAICompatDeps): void {
  app.use("/v1/*", async (c, next) => {
    const verdict = deps.checkBearer(c.req.header("authorization"), deps.remoteOf(c.req.raw));
    if (verdict !== "ok") {
      const e = refusalOf(verdict);
      return answer(c, oaiError(e.code, e.message, verdict === "limited" ? "rate_limited" : "invalid_api_key"));
    }
    deps.holdOpen?.(c.req.raw);
    await next();
  });

  app.get("/v1/models", (c) =>
    c.json({
      object: "list",
      data: deps.agents().map((a) => ({ id: `exoclaw:${a.id}`, object: "model", created: 0, owned_by: "exoclaw" })),
    }),
  );

  app.post("/v1/chat/completions", async (c) => {
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      return answer(c, oaiError("parse_error", "the body is not valid JSON"));
    }
    const parsed = v.safeParse(Body, raw);
    if (!parsed.success)
      return answer(c, oaiError("invalid_request", `invalid request: ${parsed.issues[0]?.message ?? "bad body"}`));
    const body = parsed.output;
    const agent = body.model.startsWith("exoclaw:") ? body.model.slice("exoclaw:".length) : "";
    if (!deps.agents().some((a) => a.id === agent)) {
      return answer(
        c,
        oaiError(
          "not_found",
          `model ${body.model} does not exist; use exoclaw:<agent> (see /v1/models)`,
          "model_not_found",
        ),
      );
    }
    const system = body.messages
      .filter((m) => m.role === "system" || m.role === "developer")
      .map((m) => text(m.content))
      .join("\n\n");
    const convo = body.messages.filter((m) => m.role === "user" || m.role === "assistant");
    const last = convo.at(-1);
    if (!last || last.role !== "user")
      return answer(c, oaiError("invalid_params", "the last message must be from the user"));
    const session = c.req.header("x-exoclaw-session");
    const history: ChatMessage[] = convo
      .slice(0, -1)
      .map((m) => ({ role: m.role as "user" | "assistant", parts: [{ type: "text", text: text(m.content) }] }));
    const peer = session ?? "stateless";
    const key = sessionKey(agent, { channel: "openai", account: "local", peer });
    const turn = {
      agent,
      content: text(last.content),
      address: { key, agent, channel: "openai", account: "local", peer, thread: null },
      ...(session === undefined && { history }),
      ...(system && { system }),
    };
    const id = `chatcmpl-${crypto.randomUUID().replace(/-/g, "")}`;
    const created = Math.floor(Date.now() / 1000);
    const signal = c.req.raw.signal;

    // Refused before any byte of the answer, so a stream too can still answer 429.
    const busy = deps.runner.refusal(key);
    if (busy) return busyResponse(c, busy);

    if (!body.stream) {
      let out: TurnOutcome;
      try {
        out = await deps.runner.run(turn, { signal, emit: () => {} });
      } catch (e) {
        if (e instanceof BusyError) return busyResponse(c, e);
        throw e;
      }
      if (out.stop_reason === "error")
        return answer(c, oaiError("provider_error", out.error?.message ?? "the model call failed", "provider_error"));
      return c.json({
        id,
        object: "chat.completion",
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: out.text, refusal: null },
            logprobs: null,
            finish_reason: FINISH[out.stop_reason],
          },
        ],
        usage: {
          prompt_tokens: out.usage.input_tokens,
          completion_tokens: out.usage.output_tokens,
          total_tokens: out.usage.input_tokens + out.usage.output_tokens,
        },
      });
    }

    // Queued now, in this step (the check above still holds); text that comes before the stream is
    // open is written once it is.
    const early: string[] = [];
    let onText = (t: string) => void early.push(t);
    const running = deps.runner.run(turn, { signal, emit: (e) => e.event === "text" && onText(e.data) });
    running.catch(() => {}); // awaited inside the stream; this only keeps an early failure from counting as unhandled
    return streamSSE(c, async (sse) => {
      const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
        sse.writeSSE({
          data: JSON.stringify({
            id,
            object: "chat.completion.chunk",
            created,
            model: body.model,
            choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
            ...extra,
          }),
        });
      await chunk({ role: "assistant", content: "" }, null);
      const writes: Promise<void>[] = early.map((t) => chunk({ content: t }, null));
      onText = (t) => void writes.push(chunk({ content: t }, null));
      const out = await running;
      await Promise.all(writes);
      if (out.stop_reason === "error") {
        await sse.writeSSE({
          data: JSON.stringify(
            oaiError("provider_error", out.error?.message ?? "the model call failed", "provider_error").body,
          ),
        });
      } else {
        await chunk({}, FINISH[out.stop_reason]);
        if (body.stream_options?.include_usage) {
          const usage = {
            prompt_tokens: out.usage.input_tokens,
            completion_tokens: out.usage.output_tokens,
            total_tokens: out.usage.input_tokens + out.usage.output_tokens,
          };
          await sse.writeSSE({
            data: JSON.stringify({
              id,
              object: "chat.completion.chunk",
              created,
              model: body.model,
              choices: [],
              usage,
            }),
          });
        }
      }
      await sse.writeSSE({ data: "[DONE]" });
    });
  });
}
