/**
 * A flood of distinct `peer` ids on a channel (issue 15): a real gateway, the built-in telegram
 * plugin and a loopback stand-in for the Bot API. Strangers under "pairing" each want a pairing code;
 * the pending codes of a channel are capped (`max_pending_pairings`), beyond it strangers get no
 * reply, no row and no session — only a count in /metrics and `status`. And the inbound table, which
 * keeps every message's id for deduplication, forgets completed ones after a week.
 */
import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { formatStatus, type StatusResult } from "../../src/cli/status.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";
import { tempDir } from "../helpers/temp.ts";
import { fakeBotApi, postUpdate, refusedCount, telegramHome } from "../helpers/telegram.ts";
import { eventually } from "../fuzz/_fuzz.ts";

let updateId = 1000;
/** A Telegram Update (wire-formats B1.2) from a private chat with `from`. */
const update = (from: number) =>
  JSON.stringify({
    update_id: ++updateId,
    message: {
      message_id: updateId,
      from: { id: from, is_bot: false, first_name: `u${from}` },
      chat: { id: from, type: "private", first_name: `u${from}` },
      date: 1636628439,
      text: "hello?",
    },
  });

test("a flood of distinct strangers: pending codes stop at max_pending_pairings, the rest get no reply, status and /metrics count them", async () => {
  const asked: string[] = [];
  await using api = fakeBotApi();
  const { sent } = api;
  using home = telegramHome(api, "max_pending_pairings = 20\n");
  await using gw = await startTestGateway({
    home: home.path,
    streamFor: () =>
      async function* (req) {
        asked.push(JSON.stringify(req.messages.at(-1)));
        yield { type: "text", text: "no" };
        yield { type: "done", stop_reason: "end_turn" };
      },
  });
  const strangers = 200;
  for (let i = 0; i < strangers; i += 20) {
    const batch = Array.from({ length: 20 }, (_, j) => postUpdate(gw, update(5_000_000 + i + j)));
    for (const r of await Promise.all(batch)) expect(r.status).toBe(200);
  }
  const metric = (reason: string) => refusedCount(gw, reason);
  expect(
    await eventually(async () => (await metric("stranger")) + (await metric("pairing_full")) === strangers, 20_000),
  ).toBe(true);
  expect(await metric("stranger")).toBe(20);
  expect(await metric("pairing_full")).toBe(strangers - 20);
  // Twenty codes sent, to twenty different people; nobody else was written to, no model was asked.
  expect(await eventually(() => sent.length === 20)).toBe(true);
  expect(new Set(sent.map((s) => s.chat_id)).size).toBe(20);
  expect(sent.every((s) => s.text.includes("pairing code"))).toBe(true);
  expect(asked).toEqual([]);
  // The tables a stranger could grow stay at the cap: 20 pending pairings, no sessions, no messages.
  const db = new Database(join(home.path, "exoclaw.db"), { readonly: true });
  try {
    expect(db.query("SELECT count(*) AS n FROM pairings").get()).toEqual({ n: 20 });
    expect(db.query("SELECT count(*) AS n FROM sessions").get()).toEqual({ n: 0 });
    expect(db.query("SELECT count(*) AS n FROM messages").get()).toEqual({ n: 0 });
  } finally {
    db.close();
  }
  // `status` shows it per channel.
  await using s = await openSocket(gw.wsUrl);
  const status = (await s.call("status", undefined, 1)).result as Record<string, any>;
  expect(status.pairing).toEqual({ telegram: { pending: 20, refused_full: 180 } });
  expect(formatStatus(status as StatusResult, gw.wsUrl)).toContain(
    "pairing      telegram: 20 code(s) pending, 180 stranger(s) refused at max_pending_pairings",
  );
});

test("completed channel messages are forgotten after the dedupe window: the inbound table does not grow without bound", async () => {
  using home = tempDir();
  const store = openSqliteStore(join(home.path, "exoclaw.db"));
  try {
    const day = 24 * 3600_000;
    const old = Date.now() - 10 * day;
    // 300 messages ten days ago, all answered; one still pending (never pruned: it is not done).
    for (let i = 0; i < 300; i++) {
      expect(
        await store.acceptInbound({ id: `telegram:old${i}`, channel: "telegram", payload: "{}", received_at: old + i }),
      ).toBe(true);
      await store.completeInbound(`telegram:old${i}`);
    }
    expect(
      await store.acceptInbound({ id: "telegram:stuck", channel: "telegram", payload: "{}", received_at: old }),
    ).toBe(true);
    // 300 messages now, answered.
    for (let i = 0; i < 300; i++) {
      expect(
        await store.acceptInbound({
          id: `telegram:new${i}`,
          channel: "telegram",
          payload: "{}",
          received_at: Date.now(),
        }),
      ).toBe(true);
      await store.completeInbound(`telegram:new${i}`);
    }
  } finally {
    await store.close();
  }
  const db = new Database(join(home.path, "exoclaw.db"), { readonly: true });
  try {
    expect(db.query("SELECT count(*) AS n FROM inbound WHERE id LIKE 'telegram:old%'").get()).toEqual({ n: 0 });
    expect(db.query("SELECT count(*) AS n FROM inbound WHERE id = 'telegram:stuck'").get()).toEqual({ n: 1 });
    expect(db.query("SELECT count(*) AS n FROM inbound WHERE id LIKE 'telegram:new%'").get()).toEqual({ n: 300 });
  } finally {
    db.close();
  }
  // Within the window a re-delivery is still recognised.
  const again = openSqliteStore(join(home.path, "exoclaw.db"));
  try {
    expect(
      await again.acceptInbound({ id: "telegram:new5", channel: "telegram", payload: "{}", received_at: Date.now() }),
    ).toBe(false);
  } finally {
    await again.close();
  }
});

test('under dm_policy "open", at most max_open_people_per_hour new people are answered; beyond it no reply, no session, counted', async () => {
  await using api = fakeBotApi();
  const { sent } = api;
  using home = telegramHome(api, 'dm_policy = "open"\nmax_open_people_per_hour = 10\n');
  let asked = 0;
  await using gw = await startTestGateway({
    home: home.path,
    streamFor: () =>
      async function* () {
        asked++;
        yield { type: "text", text: "hello stranger" };
        yield { type: "done", stop_reason: "end_turn" };
      },
  });
  const post = (from: number) => postUpdate(gw, update(from));
  // One after another, so which ten come first is known.
  for (let i = 0; i < 30; i++) expect((await post(7_000_000 + i)).status).toBe(200);
  expect(
    await eventually(async () => (await gw.store.pendingInbound(100)).length === 0 && sent.length === 10, 20_000),
  ).toBe(true);
  // The first ten answered; a returning one of them still is, this hour.
  expect((await post(7_000_000)).status).toBe(200);
  expect(await eventually(() => sent.length === 11, 10_000)).toBe(true);
  expect(new Set(sent.map((s) => s.chat_id)).size).toBe(10);
  expect(asked).toBe(11);
  const db = new Database(join(home.path, "exoclaw.db"), { readonly: true });
  try {
    expect(db.query("SELECT count(*) AS n FROM sessions").get()).toEqual({ n: 10 });
  } finally {
    db.close();
  }
  await using s = await openSocket(gw.wsUrl);
  const status = (await s.call("status", undefined, 1)).result as Record<string, any>;
  expect(status.open_people).toEqual({ telegram: { people_this_hour: 10, refused_full: 20 } });
  expect(formatStatus(status as StatusResult, gw.wsUrl)).toContain(
    "open         telegram: 10 people this hour, 20 sender(s) refused at max_open_people_per_hour",
  );
  expect(await (await fetch(`${gw.url}/metrics`)).text()).toContain(
    'exoclaw_channel_refused_total{channel="telegram",reason="open_full"} 20',
  );
});
