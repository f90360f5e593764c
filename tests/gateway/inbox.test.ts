/** `inbox.list`, `inbox.retry`, `inbox.drop` over the WebSocket protocol (SPEC §5, §13). */
import { expect, test } from "bun:test";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;

test("inbox RPCs: operator only; list by channel and state; a message whose channel is gone stays dead on retry; drop; errors name what is wrong", async () => {
  await using gw = await startTestGateway({ token: "inbox-token-1" });
  const s = gw.store;
  const payload = (peer: string, text: string) => JSON.stringify({ id: "1", account: "bot", peer, text });
  await s.acceptInbound({
    id: "telegram:1",
    channel: "telegram",
    payload: payload("42", "hello there"),
    received_at: 1_000,
  });
  await s.acceptInbound({
    id: "slack:Ev1",
    channel: "slack",
    payload: payload("D1", "x".repeat(100)),
    received_at: 2_000,
  });
  await s.saveInboundReply("telegram:1", "hi!");
  await s.failInbound("telegram:1", {
    error: "HTTP 403: Forbidden: bot was blocked by the user",
    retry_at: null,
    at: 3_000,
  });
  const later = Date.now() + 3_600_000;
  await s.failInbound("slack:Ev1", { error: "HTTP 500", retry_at: later, at: 3_000 });

  await using anon = await openSocket(gw.wsUrl);
  expect(((await anon.call("inbox.list")) as Msg).error.code).toBe(-32001);

  await using ws = await openSocket(gw.wsUrl, { headers: { authorization: "Bearer inbox-token-1" } });
  const list = (await ws.call("inbox.list")) as Msg;
  expect(list.result.messages).toEqual([
    {
      id: "telegram:1",
      channel: "telegram",
      account: "bot",
      peer: "42",
      text: "hello there",
      state: "dead",
      attempts: 1,
      last_error: "HTTP 403: Forbidden: bot was blocked by the user",
      dead_at: 3_000,
      received_at: 1_000,
      reply_stored: true,
    },
    {
      id: "slack:Ev1",
      channel: "slack",
      account: "bot",
      peer: "D1",
      text: `${"x".repeat(79)}…`,
      state: "pending",
      attempts: 1,
      last_error: "HTTP 500",
      next_at: later,
      received_at: 2_000,
      reply_stored: false,
    },
  ]);
  expect(((await ws.call("inbox.list", { state: "dead" })) as Msg).result.messages.map((m: Msg) => m.id)).toEqual([
    "telegram:1",
  ]);
  expect(((await ws.call("inbox.list", { channel: "slack" })) as Msg).result.messages.map((m: Msg) => m.id)).toEqual([
    "slack:Ev1",
  ]);
  expect(((await ws.call("inbox.list", { state: "gone" })) as Msg).error).toMatchObject({
    code: -32602,
    message: expect.stringContaining("state"),
  });

  // No telegram channel is configured here: the retry is tried and the message is kept, dead, saying why.
  const retry = (await ws.call("inbox.retry", { id: "telegram:1" })) as Msg;
  expect(retry.result).toEqual({ id: "telegram:1", state: "dead", error: "channel telegram is not configured" });
  expect(await s.getInbound("telegram:1")).toMatchObject({
    attempts: 1,
    last_error: "channel telegram is not configured",
    reply: "hi!",
  });
  expect(((await ws.call("inbox.retry", { id: "telegram:404" })) as Msg).error).toMatchObject({
    code: -32006,
    message: expect.stringContaining("no message telegram:404"),
  });
  expect(((await ws.call("inbox.retry", {})) as Msg).error).toMatchObject({
    code: -32602,
    message: expect.stringContaining("id"),
  });

  const dropped = (await ws.call("inbox.drop", { id: "slack:Ev1" })) as Msg;
  expect(dropped.result.dropped).toMatchObject({ id: "slack:Ev1", channel: "slack", state: "pending" });
  expect(((await ws.call("inbox.drop", { id: "slack:Ev1" })) as Msg).error.code).toBe(-32006);
  expect(((await ws.call("inbox.drop", { id: "slack:Ev1", extra: 1 })) as Msg).error.code).toBe(-32602);
  expect(((await ws.call("inbox.list")) as Msg).result.messages.map((m: Msg) => m.id)).toEqual(["telegram:1"]);
  expect(((await ws.call("status")) as Msg).result.inbound).toEqual({ pending: 0, dead: 1 });
});
