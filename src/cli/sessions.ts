/**
 * `exoclaw sessions [list|show KEY|reset KEY]`: through the running gateway when one answers,
 * else straight from the store (SQLite allows a second process; the gateway is not needed to read).
 */
import type { MessagePart, StoredMessage } from "../core/index.ts";
import { defineCommand } from "citty";
import { ExoError } from "../lib/errors.ts";
import type { SessionPage } from "../store/index.ts";
import { clientArgs, stringFlag } from "./_args.ts";
import { type BackendSpec, print, withBackend } from "./_backend.ts";

type HistoryPage = { session: string; messages: Omit<StoredMessage, "session">[]; next_before: number | null };

interface SessionsBackend {
  list(q: { agent?: string; channel?: string; limit: number; cursor?: string }): Promise<SessionPage>;
  history(session: string, limit: number): Promise<HistoryPage>;
  reset(session: string): Promise<{ session: string; removed_messages: number }>;
}

const notFound = (session: string) => new ExoError("not_found", `no session ${session}`);

/** A memory store is opened as it is (empty: its sessions lived in a gateway that is gone). */
const sessions: BackendSpec<SessionsBackend> = {
  gateway: (client) => ({
    list: (q) => client.call("session.list", q) as Promise<SessionPage>,
    history: (session, limit) => client.call("chat.history", { session, limit }) as Promise<HistoryPage>,
    reset: (session) =>
      client.call("session.reset", { session }) as Promise<{ session: string; removed_messages: number }>,
  }),
  empty: () => ({
    list: async () => ({ sessions: [], next_cursor: null }),
    history: async (s) => Promise.reject(notFound(s)),
    reset: async (s) => Promise.reject(notFound(s)),
  }),
  store: (store) => ({
    list: (q) => store.listSessions(q),
    async history(session, limit) {
      const messages = await store.history(session, { limit });
      if (messages.length === 0 && !(await store.getSession(session))) throw notFound(session);
      const first = messages[0]?.seq ?? 1;
      return { session, messages, next_before: first > 1 ? first : null };
    },
    async reset(session) {
      const removed = await store.resetSession(session);
      if (removed === null) throw notFound(session);
      return { session, removed_messages: removed };
    },
  }),
};

/** One line per message part, for the terminal. */
export function formatPart(p: MessagePart): string {
  switch (p.type) {
    case "text":
      return p.text;
    case "tool_use":
      return `[tool_use ${p.name} ${JSON.stringify(p.input)}]`;
    case "tool_result":
      return `[tool_result${p.is_error ? " (error)" : ""} ${p.content}]`;
    default: {
      const never: never = p;
      return JSON.stringify(never);
    }
  }
}

const common = {
  ...clientArgs,
  json: { type: "boolean", description: "Print JSON" },
} as const;

function parseLimit(value: unknown): number {
  const s = stringFlag("limit", value) ?? "50";
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 500)
    throw new ExoError("usage", `--limit: expected an integer 1-500, got "${s}"`);
  return Number(s);
}

const listArgs = {
  ...common,
  agent: { type: "string", description: "Only this agent's sessions" },
  channel: { type: "string", description: "Only this channel's sessions" },
  limit: { type: "string", description: "Sessions per page (1-500, default 50)" },
  cursor: { type: "string", description: "Continue from a previous page" },
} as const;

const list = defineCommand({
  meta: { name: "list", description: "List sessions, most recently active first" },
  args: listArgs,
  run: ({ args }) =>
    withBackend(args, sessions, async (b) => {
      const agent = stringFlag("agent", args.agent);
      const channel = stringFlag("channel", args.channel);
      const cursor = stringFlag("cursor", args.cursor);
      const page = await b.list({
        limit: parseLimit(args.limit),
        ...(agent && { agent }),
        ...(channel && { channel }),
        ...(cursor && { cursor }),
      });
      if (args.json) return print(JSON.stringify(page, null, 2));
      if (page.sessions.length === 0) return print("no sessions");
      const width = Math.max(...page.sessions.map((s) => s.key.length), 7);
      print(`${"SESSION".padEnd(width)}  MESSAGES  LAST ACTIVE`);
      for (const s of page.sessions)
        print(
          `${s.key.padEnd(width)}  ${String(s.message_count).padStart(8)}  ${new Date(s.updated_at).toISOString()}`,
        );
      if (page.next_cursor) print(`more: exoclaw sessions list --cursor ${page.next_cursor}`);
    }),
});

const show = defineCommand({
  meta: { name: "show", description: "Show a session's recent messages" },
  args: {
    ...common,
    key: { type: "positional", description: "Session key, e.g. main:telegram:bot1:12345", required: true },
    limit: { type: "string", description: "How many recent messages (1-500, default 50)" },
  },
  run: ({ args }) =>
    withBackend(args, sessions, async (b) => {
      const page = await b.history(String(args.key), parseLimit(args.limit));
      if (args.json) return print(JSON.stringify(page, null, 2));
      if (page.next_before) print(`… ${page.next_before - 1} earlier message(s)`);
      for (const m of page.messages) print(`#${m.seq} ${m.role}: ${m.parts.map(formatPart).join(" ")}`);
    }),
});

const reset = defineCommand({
  meta: { name: "reset", description: "Forget a session's conversation" },
  args: { ...common, key: { type: "positional", description: "Session key", required: true } },
  run: ({ args }) =>
    withBackend(args, sessions, async (b) => {
      const r = await b.reset(String(args.key));
      print(args.json ? JSON.stringify(r) : `reset ${r.session}: removed ${r.removed_messages} message(s)`);
    }),
});

export default defineCommand({
  meta: { name: "sessions", description: "List, show and reset conversation sessions" },
  // `exoclaw sessions --port N` means `sessions list --port N`: the flags must be known here too.
  args: listArgs,
  subCommands: { list, show, reset },
  default: "list",
});
