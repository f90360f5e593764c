import { describe, expect, test } from "bun:test";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket } from "../helpers/ws.ts";
import { addr } from "../store/contract.ts";

type Msg = Record<string, any>;
const say = (role: "user" | "assistant", text: string) => ({ role, parts: [{ type: "text" as const, text }] });

describe("session RPCs", () => {
  test("a session's history survives a gateway restart", async () => {
    using home = tempDir();
    const s = addr("42");
    {
      await using gw = await startTestGateway({ home: home.path });
      await gw.store.appendMessages(s, [say("user", "what's the weather?"), say("assistant", "Sunny ☀")]);
    }
    await using gw = await startTestGateway({ home: home.path });
    await using ws = await openSocket(gw.wsUrl);
    const r = (await ws.call("chat.history", { session: s.key })) as Msg;
    expect(r.result.session).toBe(s.key);
    expect(r.result.messages.map((m: Msg) => [m.seq, m.role, m.parts[0].text])).toEqual([
      [1, "user", "what's the weather?"],
      [2, "assistant", "Sunny ☀"],
    ]);
    expect(r.result.next_before).toBeNull();
    const status = (await ws.call("status")) as Msg;
    expect(status.result.store).toMatchObject({ kind: "sqlite", sessions: 1 });
    expect(status.result.store.location).toBe(`${home.path}/exoclaw.db`);
  });

  test("chat.history pages backwards; unknown sessions are -32006", async () => {
    await using gw = await startTestGateway();
    const s = addr("p");
    await gw.store.appendMessages(
      s,
      Array.from({ length: 12 }, (_, i) => say("user", `m${i + 1}`)),
    );
    await using ws = await openSocket(gw.wsUrl);
    const p1 = (await ws.call("chat.history", { session: s.key, limit: 5 })) as Msg;
    expect(p1.result.messages.map((m: Msg) => m.seq)).toEqual([8, 9, 10, 11, 12]);
    expect(p1.result.next_before).toBe(8);
    const p2 = (await ws.call("chat.history", { session: s.key, limit: 5, before: p1.result.next_before })) as Msg;
    expect(p2.result.messages.map((m: Msg) => m.seq)).toEqual([3, 4, 5, 6, 7]);
    const missing = (await ws.call("chat.history", { session: "main:ws:local:nobody" })) as Msg;
    expect(missing.error).toMatchObject({ code: -32006, data: { session: "main:ws:local:nobody" } });
    const bad = (await ws.call("chat.history", { session: s.key, limit: 0 })) as Msg;
    expect(bad.error).toMatchObject({ code: -32602, data: { field: "limit" } });
    const noKey = (await ws.call("chat.history", {})) as Msg;
    expect(noKey.error).toMatchObject({ code: -32602, data: { field: "session" } });
  });

  test("session.list filters and paginates; session.reset forgets", async () => {
    await using gw = await startTestGateway();
    for (let i = 0; i < 5; i++)
      await gw.store.appendMessages(addr(`u${i}`, { channel: i < 3 ? "telegram" : "discord" }), [say("user", "hi")]);
    await using ws = await openSocket(gw.wsUrl);
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const r = (await ws.call("session.list", { limit: 2, ...(cursor ? { cursor } : {}) })) as Msg;
      all.push(...r.result.sessions.map((s: Msg) => s.peer));
      cursor = r.result.next_cursor;
    } while (cursor);
    expect(all.sort()).toEqual(["u0", "u1", "u2", "u3", "u4"]);
    const discord = (await ws.call("session.list", { channel: "discord" })) as Msg;
    expect(discord.result.sessions.map((s: Msg) => s.peer).sort()).toEqual(["u3", "u4"]);
    expect(discord.result.sessions[0]).toMatchObject({
      agent: "main",
      channel: "discord",
      account: "bot1",
      message_count: 1,
    });
    const reset = (await ws.call("session.reset", { session: addr("u0").key })) as Msg;
    expect(reset.result).toEqual({ session: addr("u0").key, removed_messages: 1 });
    expect(((await ws.call("session.reset", { session: addr("u0").key })) as Msg).error.code).toBe(-32006);
    expect(((await ws.call("session.list", {})) as Msg).result.sessions).toHaveLength(4);
    expect(((await ws.call("session.list", { cursor: "nope" })) as Msg).error).toMatchObject({
      code: -32602,
      data: { field: "cursor" },
    });
  });
});

describe("store failures at start", () => {
  test("a corrupt database stops the gateway from starting, with the file named", async () => {
    using home = tempDir();
    home.file("exoclaw.db", "garbage".repeat(1000));
    await expect(startTestGateway({ home: home.path })).rejects.toThrow(
      `${home.path}/exoclaw.db is not a readable exoclaw database`,
    );
  });

  test('store.kind = "memory" works and "nats" without servers is refused clearly', async () => {
    await using gw = await startTestGateway({ toml: '[store]\nkind = "memory"\n' });
    await using ws = await openSocket(gw.wsUrl);
    expect(((await ws.call("status")) as Msg).result.store).toMatchObject({ kind: "memory", location: "memory" });
    await expect(startTestGateway({ toml: '[store]\nkind = "nats"\n' })).rejects.toThrow(
      'store.nats_url: store.kind = "nats" needs the NATS servers: set [store] nats_url (or [bus] nats_url, which it defaults to)',
    );
  });
});
