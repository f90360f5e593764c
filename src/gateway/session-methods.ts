/** RPC methods over stored sessions (SPEC §5): `session.list`, `session.reset`, `chat.history`. */
import * as v from "valibot";
import { ExoError } from "../lib/errors.ts";
import { defineMethod, type Method } from "../protocol/methods.ts";
import type { ConversationStore } from "../store/index.ts";

const limit = v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(500)), 50);
const key = v.pipe(v.string(), v.minLength(1));

export const SessionListParams = v.strictObject({
  agent: v.optional(v.string()),
  channel: v.optional(v.string()),
  limit,
  cursor: v.optional(v.string()),
});
export const SessionResetParams = v.strictObject({ session: key });
export const ChatHistoryParams = v.strictObject({
  session: key,
  limit,
  before: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
});

const notFound = (session: string) => new ExoError("not_found", `no session ${session}`, { data: { session } });

/** `onReset` lets whoever caches a session's history drop it. */
export function sessionMethods(
  store: ConversationStore,
  onReset: (session: string) => void = () => {},
): Map<string, Method<never>> {
  return new Map([
    [
      "session.list",
      defineMethod({
        params: SessionListParams,
        handle: (p) =>
          store.listSessions({
            limit: p.limit,
            ...(p.agent !== undefined && { agent: p.agent }),
            ...(p.channel !== undefined && { channel: p.channel }),
            ...(p.cursor !== undefined && { cursor: p.cursor }),
          }),
      }),
    ],
    [
      "session.reset",
      defineMethod({
        params: SessionResetParams,
        handle: async (p) => {
          const removed = await store.resetSession(p.session);
          onReset(p.session);
          if (removed === null) throw notFound(p.session);
          return { session: p.session, removed_messages: removed };
        },
      }),
    ],
    [
      "chat.history",
      defineMethod({
        params: ChatHistoryParams,
        handle: async (p) => {
          const messages = await store.history(p.session, {
            limit: p.limit,
            ...(p.before !== undefined && { before: p.before }),
          });
          if (messages.length === 0 && !(await store.getSession(p.session))) throw notFound(p.session);
          const first = messages[0]?.seq ?? 1;
          return {
            session: p.session,
            messages: messages.map(({ session: _s, ...m }) => m),
            next_before: first > 1 ? first : null,
          };
        },
      }),
    ],
  ]);
}
