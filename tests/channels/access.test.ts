/** The decisions of "who may talk" over time, with an injected clock (the gateway tests use real time). */
import { expect, test } from "bun:test";
import { ChannelAccess } from "../../src/channels/access.ts";
import {
  MAX_PENDING_PER_CHANNEL,
  PAIRING_CODE_TTL_MS,
  PAIRING_RESEND_MS,
  Pairings,
} from "../../src/channels/pairing.ts";
import { createMemoryStore } from "../../src/store/index.ts";

function setup() {
  let now = 1_700_000_000_000;
  const store = createMemoryStore();
  const pairings = new Pairings(store, () => now);
  const access = new ChannelAccess(pairings, () => now);
  return { store, pairings, access, tick: (ms: number) => (now += ms) };
}
const dm = (peer: string) => ({ account: "bot", peer, sender: peer });
const person = (peer: string) => `telegram:bot:${peer}`;

test("a stranger's code is sent once per 10 minutes, the same code until it expires after an hour, then a new one", async () => {
  const { access, tick } = setup();
  const first = (await access.admit("telegram", undefined, dm("1"), person("1"))) as {
    admit: false;
    reason: string;
    notice: string;
  };
  // (Read before any toMatchObject: Bun's replaces matched values with the matchers in the received object.)
  const code = /pairing code: ([A-Z2-9]{8})/.exec(first.notice)?.[1];
  expect(code).toBeDefined();
  expect([first.admit, first.reason]).toEqual([false, "stranger"]);
  tick(PAIRING_RESEND_MS - 1);
  expect(await access.admit("telegram", undefined, dm("1"), person("1"))).toEqual({ admit: false, reason: "stranger" });
  tick(1);
  expect((await access.admit("telegram", undefined, dm("1"), person("1"))) as { notice: string }).toMatchObject({
    notice: expect.stringContaining(code!),
  });
  tick(PAIRING_CODE_TTL_MS);
  const renewed = (await access.admit("telegram", undefined, dm("1"), person("1"))) as { notice: string };
  expect(renewed.notice).toMatch(/pairing code: [A-Z2-9]{8}/);
  expect(renewed.notice).not.toContain(code!);
});

test("an expired code cannot be approved; at most 50 codes pending per channel, expired ones make room", async () => {
  const { access, pairings, tick } = setup();
  const notice = (await access.admit("telegram", undefined, dm("1"), person("1"))) as { notice: string };
  const code = /code: (\w{8})/.exec(notice.notice)![1]!;
  tick(PAIRING_CODE_TTL_MS);
  await expect(pairings.approve(code)).rejects.toThrow("no pending pairing code");
  for (let i = 0; i < MAX_PENDING_PER_CHANNEL; i++)
    await access.admit("telegram", undefined, dm(`p${i}`), person(`p${i}`));
  // The 51st stranger gets nothing; another channel is not affected.
  expect(await access.admit("telegram", undefined, dm("late"), person("late"))).toEqual({
    admit: false,
    reason: "pairing_full",
  });
  expect(await access.admit("slack", undefined, dm("U1"), "slack:bot:U1")).toMatchObject({
    notice: expect.any(String),
  });
  tick(PAIRING_CODE_TTL_MS);
  expect(await access.admit("telegram", undefined, dm("late"), person("late"))).toMatchObject({
    notice: expect.any(String),
  });
  expect((await pairings.list("telegram")).map((p) => p.person)).toEqual([person("late")]);
});

test("the rate window slides: a minute after the first message, one more is let through; a retry is never counted", async () => {
  const { access, tick } = setup();
  const policy = { dm_policy: "open" as const, rate_per_minute: 2 };
  const go = () => access.admit("telegram", policy, dm("1"), person("1"));
  expect(await go()).toEqual({ admit: true });
  tick(30_000);
  expect(await go()).toEqual({ admit: true });
  expect(await go()).toMatchObject({ admit: false, reason: "rate_limited", notice: expect.any(String) });
  expect(await go()).toEqual({ admit: false, reason: "rate_limited" });
  expect(await access.admit("telegram", policy, dm("1"), person("1"), true)).toEqual({ admit: true });
  // Someone else has their own window.
  expect(await access.admit("telegram", policy, dm("2"), person("2"))).toEqual({ admit: true });
  tick(30_000);
  expect(await go()).toEqual({ admit: true });
  // Told to slow down 30 s ago: not again within the minute.
  expect(await go()).toEqual({ admit: false, reason: "rate_limited" });
  tick(30_000);
  expect(await go()).toEqual({ admit: true });
  expect(await go()).toMatchObject({ admit: false, reason: "rate_limited", notice: expect.any(String) });
  expect(await access.admit("telegram", { ...policy, rate_per_minute: 0 }, dm("1"), person("1"))).toEqual({
    admit: true,
  });
});

test("allow_from matches the peer, the sender or the person id; a retry of a stranger's message sends no code", async () => {
  const { access, store } = setup();
  const allow = (ids: string[]) => ({ dm_policy: "allowlist" as const, allow_from: ids });
  expect(await access.admit("slack", allow(["U9"]), { account: "A", peer: "D1", sender: "U9" }, "slack:A:U9")).toEqual({
    admit: true,
  });
  expect(await access.admit("slack", allow(["D1"]), { account: "A", peer: "D1", sender: "U9" }, "slack:A:U9")).toEqual({
    admit: true,
  });
  expect(
    await access.admit("slack", allow(["slack:A:U9"]), { account: "A", peer: "D1", sender: "U9" }, "slack:A:U9"),
  ).toEqual({ admit: true });
  expect(await access.admit("slack", allow(["U8"]), { account: "A", peer: "D1", sender: "U9" }, "slack:A:U9")).toEqual({
    admit: false,
    reason: "not_allowed",
  });
  expect(await access.admit("telegram", undefined, dm("1"), person("1"), true)).toEqual({
    admit: false,
    reason: "stranger",
  });
  expect(await store.listPairings({})).toEqual([]);
});

test('groups: "*" lists every group, a guild id lists its channels; require_mention = false answers every message there', async () => {
  const { access } = setup();
  const msg = { account: "app", peer: "chan1", guild: "g1", sender: "u1", group: true };
  expect(await access.admit("discord", { groups: ["g1"] }, { ...msg, mentioned: true }, "discord:app:u1")).toEqual({
    admit: true,
  });
  expect(await access.admit("discord", { groups: ["chan1"] }, { ...msg, mentioned: true }, "discord:app:u1")).toEqual({
    admit: true,
  });
  expect(await access.admit("discord", { groups: ["*"] }, msg, "discord:app:u1")).toEqual({
    admit: false,
    reason: "not_mentioned",
  });
  expect(await access.admit("discord", { groups: ["*"], require_mention: false }, msg, "discord:app:u1")).toEqual({
    admit: true,
  });
  expect(
    await access.admit("discord", { groups: [], dm_policy: "open" }, { ...msg, mentioned: true }, "discord:app:u1"),
  ).toEqual({ admit: false, reason: "group_not_listed" });
});

test('"open": max_open_people_per_hour distinct people an hour; someone answered this hour always is; a retry never counts; the next hour starts over', async () => {
  const { access, tick } = setup();
  const open = { dm_policy: "open" as const, max_open_people_per_hour: 2, rate_per_minute: 0 };
  expect(await access.admit("telegram", open, dm("a"), person("a"))).toEqual({ admit: true });
  expect(await access.admit("telegram", open, dm("b"), person("b"))).toEqual({ admit: true });
  expect(await access.admit("telegram", open, dm("c"), person("c"))).toEqual({ admit: false, reason: "open_full" });
  expect(await access.admit("telegram", open, dm("a"), person("a"))).toEqual({ admit: true });
  // A retry of a message admitted before is not a new person; allow_from is never capped; nor is another channel.
  expect(await access.admit("telegram", open, dm("d"), person("d"), true)).toEqual({ admit: true });
  expect(await access.admit("telegram", { ...open, allow_from: ["e"] }, dm("e"), person("e"))).toEqual({ admit: true });
  expect(await access.admit("slack", open, dm("U1"), "slack:bot:U1")).toEqual({ admit: true });
  expect(access.openStatus()).toEqual({
    telegram: { people_this_hour: 2, refused_full: 1 },
    slack: { people_this_hour: 1, refused_full: 0 },
  });
  tick(60 * 60_000);
  expect(await access.admit("telegram", open, dm("c"), person("c"))).toEqual({ admit: true });
  expect(access.openStatus().telegram).toEqual({ people_this_hour: 1, refused_full: 1 });
});
