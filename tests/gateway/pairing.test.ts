/** `pairing.list`, `pairing.approve`, `pairing.revoke` over the WebSocket protocol (SPEC §5). */
import { expect, test } from "bun:test";
import type { Pairing } from "../../src/store/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;

const pending = (person: string, code: string, expires_at: number): Pairing => ({
  person,
  channel: person.split(":")[0]!,
  status: "pending",
  code,
  created_at: 1_000,
  expires_at,
  notified_at: 1_000,
  approved_at: null,
});

test("pairing RPCs: list pending and approved, approve by code (any case, dashes), revoke by person; errors name what is wrong", async () => {
  await using gw = await startTestGateway({ token: "pair-token-1" });
  const later = Date.now() + 3_600_000;
  await gw.store.savePairing(pending("telegram:bot:1", "ABCD2345", later));
  await gw.store.savePairing(pending("slack:A1:U9", "WXYZ6789", later));
  await gw.store.savePairing(pending("telegram:bot:2", "EXPD2345", Date.now() - 1));

  // Operator methods: without the token nothing is shown.
  await using anon = await openSocket(gw.wsUrl);
  expect(((await anon.call("pairing.list")) as Msg).error.code).toBe(-32001);

  await using ws = await openSocket(gw.wsUrl, { headers: { authorization: "Bearer pair-token-1" } });
  const list = (await ws.call("pairing.list")) as Msg;
  // The expired code is not listed.
  expect(list.result.pairings).toEqual([
    {
      person: "telegram:bot:1",
      channel: "telegram",
      status: "pending",
      code: "ABCD2345",
      created_at: 1_000,
      expires_at: later,
    },
    {
      person: "slack:A1:U9",
      channel: "slack",
      status: "pending",
      code: "WXYZ6789",
      created_at: 1_000,
      expires_at: later,
    },
  ]);
  expect(
    ((await ws.call("pairing.list", { channel: "slack" })) as Msg).result.pairings.map((p: Msg) => p.person),
  ).toEqual(["slack:A1:U9"]);

  const approved = (await ws.call("pairing.approve", { code: "abcd-2345" })) as Msg;
  expect(approved.result).toMatchObject({ person: "telegram:bot:1", channel: "telegram", status: "approved" });
  expect(approved.result.code).toBeUndefined();
  expect(await gw.store.getPairing("telegram:bot:1")).toMatchObject({ status: "approved", code: null });

  const used = (await ws.call("pairing.approve", { code: "ABCD2345" })) as Msg;
  expect(used.error).toMatchObject({
    code: -32006,
    message: expect.stringContaining("no pending pairing code ABCD2345"),
  });
  expect(((await ws.call("pairing.approve", { code: "EXPD2345" })) as Msg).error.code).toBe(-32006);
  const bad = (await ws.call("pairing.approve", {})) as Msg;
  expect(bad.error.code).toBe(-32602);
  expect(bad.error.message).toContain("code");
  expect(((await ws.call("pairing.approve", { code: "X", extra: 1 })) as Msg).error.code).toBe(-32602);

  expect(((await ws.call("pairing.revoke", { person: "telegram:bot:1" })) as Msg).result).toMatchObject({
    person: "telegram:bot:1",
    status: "approved",
  });
  expect(((await ws.call("pairing.revoke", { person: "telegram:bot:1" })) as Msg).error.code).toBe(-32006);
  expect(((await ws.call("pairing.revoke", { person: 7 })) as Msg).error.code).toBe(-32602);
  expect(((await ws.call("pairing.list")) as Msg).result.pairings.map((p: Msg) => p.person)).toEqual(["slack:A1:U9"]);
});
