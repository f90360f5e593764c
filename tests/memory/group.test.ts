/**
 * Semantic memory in group chats: a fact belongs to the person who said it, not to the chat. Two
 * people in one Telegram group, through the real telegram channel plugin.
 */
import { expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import type { ChatRequest } from "../../src/agent/types.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";

const GROUP = -1001234567890;
const ALICE = 111111;
const BOB = 222222;

let updateId = 5000;
const update = (
  from: number | null,
  text: string,
  chat: { id: number; type: string } = { id: GROUP, type: "supergroup" },
) =>
  JSON.stringify({
    update_id: ++updateId,
    message: {
      message_id: updateId,
      ...(from !== null && { from: { id: from, is_bot: false, first_name: String(from) } }),
      chat: { ...chat, title: "Team" },
      date: 1636628439,
      text,
    },
  });

test("telegram group: Alice's fact is recalled for Alice, never put into Bob's prompt; a sender-less group post gets no memory", async () => {
  const api = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ ok: true, result: {} }) });
  using home = tempDir();
  writeCredential(home.path, "tg_secret", "S3cr3t_token-1");
  writeCredential(home.path, "tg_bot", "987654321:AAE-secret-token");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\ndm_policy = "open"\ngroups = ["${GROUP}"]\nrequire_mention = false\n`,
  );
  const seen: ChatRequest[] = [];
  const stream: StreamFn = async function* (req) {
    seen.push(structuredClone(req));
    const last = req.messages.at(-1)!;
    const text = (last.parts[0] as { text?: string }).text ?? "";
    if (last.role === "user" && text.startsWith("remember:")) {
      yield { type: "tool_call", id: `t${seen.length}`, name: "memory_save", input: { fact: text.slice(9).trim() } };
      yield { type: "done", stop_reason: "tool_use" };
      return;
    }
    yield { type: "text", text: "ok" };
    yield { type: "done", stop_reason: "end_turn" };
  };
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    const post = async (body: string) => {
      const before = seen.length;
      const r = await fetch(`${gw.url}/webhook/telegram`, {
        method: "POST",
        headers: { "x-telegram-bot-api-secret-token": "S3cr3t_token-1" },
        body,
      });
      expect(r.status).toBe(200);
      for (let i = 0; i < 250 && (seen.length === before || (await gw.store.pendingInbound(10)).length > 0); i++)
        await Bun.sleep(20);
      return seen.slice(before);
    };
    const saved = await post(update(ALICE, "remember: my salary is 93000 euros"));
    expect(saved[1]!.messages.at(-1)!.parts[0]).toMatchObject({
      type: "tool_result",
      content: "remembered",
      is_error: false,
    });
    expect((await gw.store.searchFacts({ agent: "main", query: "salary", limit: 5 })).map((f) => f.person)).toEqual([
      `telegram:bot:${ALICE}`,
    ]);

    // Bob, same group, same session: the fact is not "about this person" for him.
    const bob = await post(update(BOB, "what is my salary?"));
    expect(bob[0]!.system).not.toContain("93000");
    expect(bob[0]!.tools.map((t) => t.name)).toEqual(["memory_save", "memory_search"]);
    // Alice is recalled in the group, and in her direct chat with the bot (the same person).
    expect((await post(update(ALICE, "what is my salary?")))[0]!.system).toContain("93000");
    expect((await post(update(ALICE, "salary again?", { id: ALICE, type: "private" })))[0]!.system).toContain("93000");

    // A channel post has no sender: nobody's memory, neither read nor written.
    const anon = await post(update(null, "salary of everyone?"));
    expect(anon[0]!.system).not.toContain("93000");
    expect(anon[0]!.tools.map((t) => t.name)).toEqual([]);
    // Every reply went out (nothing left pending behind the memory checks).
    expect(await gw.store.pendingInbound(10)).toEqual([]);
  } finally {
    await api.stop(true);
  }
});
