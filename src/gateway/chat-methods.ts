/**
 * `chat.send` and `chat.cancel` (SPEC §5). chat.send streams `chat.event` notifications (with a
 * per-request seq) on the calling socket, then answers with the turn's result. A client that
 * disconnects, or a chat.cancel naming the request, aborts the upstream HTTP request.
 *
 * Who may cancel what: `{id}` names a chat.send of the calling connection only (request ids are the
 * client's own numbering). `{session}` cancels every turn of that session, whoever started it (a
 * WebSocket, /v1/chat/completions, a channel message) and on every gateway of the cluster
 * (./cancel.ts), for any authenticated connection — the same rule as chat.history and session.reset,
 * which take any session key: every authenticated connection is the operator (tokens have no scopes
 * yet), and an unauthenticated one gets -32001 before any method runs.
 */
import { type InboundAddress, sessionKey } from "../core/index.ts";
import * as v from "valibot";
import type { AgentRunner } from "../agent/runner.ts";
import { defineMethod, type Method } from "../protocol/methods.ts";
import { type MatchedBy, type Route } from "../router/index.ts";

const opt = v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256)));

export const ChatSendParams = v.strictObject({
  content: v.pipe(v.string(), v.minLength(1, "content must not be empty")),
  channel: v.optional(v.pipe(v.string(), v.regex(/^[a-z0-9_-]+$/, "channel must match [a-z0-9_-]+")), "ws"),
  account: v.optional(v.pipe(v.string(), v.minLength(1)), "local"),
  peer: opt,
  guild: opt,
  team: opt,
  thread: opt,
  agent: opt,
});

export const ChatCancelParams = v.strictObject({
  /** The id of a chat.send request on this connection. */
  id: v.optional(v.union([v.string(), v.number()])),
  /** Or: every turn of that session, running or queued, on every gateway (any authenticated caller). */
  session: opt,
});

export interface ChatDeps {
  runner: AgentRunner;
  route: (addr: InboundAddress) => Route;
  /** Cancels a session's turns everywhere; resolves with how many. Default: this process's (runner.cancelSession). */
  cancelSession?: (session: string) => Promise<number>;
}

interface Running {
  controller: AbortController;
  session: string;
}

export function chatMethods(deps: ChatDeps): Map<string, Method<never>> {
  // Keyed by connection, then request id: a socket can only cancel its own requests.
  const running = new Map<string, Map<string | number | null, Running>>();
  const cancelSession = deps.cancelSession ?? (async (session: string) => deps.runner.cancelSession(session));

  return new Map([
    [
      "chat.send",
      defineMethod({
        params: ChatSendParams,
        async handle(p, ctx) {
          const addr: InboundAddress = {
            channel: p.channel,
            account: p.account,
            ...(p.peer !== undefined && { peer: p.peer }),
            ...(p.guild !== undefined && { guild: p.guild }),
            ...(p.team !== undefined && { team: p.team }),
            ...(p.thread !== undefined && { thread: p.thread }),
          };
          const routed =
            p.agent === undefined
              ? deps.route(addr)
              : { agent: p.agent, session: sessionKey(p.agent, addr), matched_by: "explicit" as const };
          const matched_by: MatchedBy | "explicit" = routed.matched_by;
          const controller = new AbortController();
          const onClose = () => controller.abort();
          ctx.signal.addEventListener("abort", onClose, { once: true });
          const mine = running.get(ctx.connectionId) ?? new Map<string | number | null, Running>();
          running.set(ctx.connectionId, mine);
          mine.set(ctx.requestId, { controller, session: routed.session });
          let seq = 0;
          try {
            const out = await deps.runner.run(
              {
                agent: routed.agent,
                content: p.content,
                address: {
                  key: routed.session,
                  agent: routed.agent,
                  channel: p.channel,
                  account: p.account,
                  peer: p.peer ?? null,
                  thread: p.thread ?? null,
                },
              },
              {
                signal: controller.signal,
                emit: (e) =>
                  ctx.notify("chat.event", {
                    id: ctx.requestId,
                    session: routed.session,
                    seq: ++seq,
                    event: e.event,
                    data: e.data,
                  }),
              },
            );
            return {
              session: out.session,
              agent: out.agent,
              matched_by,
              text: out.text,
              usage: out.usage,
              stop_reason: out.stop_reason,
            };
          } finally {
            ctx.signal.removeEventListener("abort", onClose);
            mine.delete(ctx.requestId);
            if (mine.size === 0) running.delete(ctx.connectionId);
          }
        },
      }),
    ],
    [
      "chat.cancel",
      defineMethod({
        params: ChatCancelParams,
        async handle(p, ctx) {
          let cancelled = 0;
          // A request of this connection in another session than the one named (the session's are counted there).
          const r = p.id !== undefined ? running.get(ctx.connectionId)?.get(p.id) : undefined;
          if (r && r.session !== p.session && !r.controller.signal.aborted) {
            r.controller.abort();
            cancelled++;
          }
          if (p.session !== undefined) cancelled += await cancelSession(p.session);
          return { cancelled };
        },
      }),
    ],
  ]);
}
