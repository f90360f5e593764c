/**
 * A gateway on the nats store (a real nats-server with JetStream, one for this file): it starts on
 * `[store] kind = "nats"`, `status` shows the store's streams and buckets, and `/ready` follows the
 * store — 503 while NATS is stopped (with `/health` still answering), 200 again once it is back; two
 * gateways on one store carry one conversation between them, and a channel message resent to the
 * other gateway is a duplicate there.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import type { ChatRequest } from "../../src/agent/types.ts";
import { formatStatus } from "../../src/cli/status.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startJetStream, waitFor, type JsServers } from "../helpers/jetstream.ts";
import { openSocket } from "../helpers/ws.ts";

let js: JsServers;
beforeAll(async () => {
  js = await startJetStream();
});
afterAll(async () => {
  await js?.[Symbol.asyncDispose]();
});

test("a gateway on the nats store: status lists its streams and buckets; /ready is 503 while NATS is stopped and recovers", async () => {
  await using gw = await startTestGateway({
    toml: `[store]\nkind = "nats"\nnats_url = ["${js.url}"]\nnamespace = "gwtest"\n`,
  });
  await using ws = await openSocket(gw.wsUrl);
  const status = ((await ws.call("status")) as { result: Record<string, unknown> }).result as never as Parameters<
    typeof formatStatus
  >[0];
  expect(status.store).toMatchObject({ kind: "nats", sessions: 0 });
  const names = status.store!.engine!.streams.map((s) => s.name);
  expect(names).toEqual(
    expect.arrayContaining([
      "gwtest_msgs",
      "gwtest_usage",
      "KV_gwtest_inbox",
      "KV_gwtest_seen",
      "KV_gwtest_pairings",
      "KV_gwtest_plugin_state",
      "KV_gwtest_facts",
      "KV_gwtest_approvals",
      "KV_gwtest_approval_rules",
      "KV_gwtest_approval_owners",
      "KV_gwtest_leases",
    ]),
  );
  expect(formatStatus(status, gw.url)).toContain("gwtest_msgs 0 msg(s) R1");
  // What the operator sees: `exoclaw status` against this gateway.
  const cli = await runExoclaw(["status", "--port", String(gw.port)], { EXOCLAW_HOME: gw.home });
  expect(cli.code).toBe(0);
  expect(cli.stdout).toMatch(
    /store {8}nats \(nats:\/\/127\.0\.0\.1:\d+, namespace gwtest, 1 replica\), 0 session\(s\)/,
  );
  expect(cli.stdout).toContain("KV_gwtest_inbox 0 msg(s) R1");
  expect((await fetch(`${gw.url}/ready`)).status).toBe(200);

  await js.nodes[0]!.stop();
  await waitFor(async () => (await fetch(`${gw.url}/ready`)).status === 503);
  const ready = (await (await fetch(`${gw.url}/ready`)).json()) as { store: { ok: boolean; error: string } };
  expect(ready.store).toMatchObject({ ok: false });
  expect(ready.store.error).toContain("unreachable");
  expect((await fetch(`${gw.url}/health`)).status).toBe(200);

  await js.nodes[0]!.start();
  await waitFor(async () => (await fetch(`${gw.url}/ready`)).status === 200);
});

test('store.kind = "nats" takes [bus] nats_url (a list, one of them dead) when [store] nats_url is unset, and a NATS that does not answer stops the start with the servers named', async () => {
  await using gw = await startTestGateway({
    toml: `[bus]\nnats_url = ["nats://127.0.0.1:1", "${js.url}"]\n\n[store]\nkind = "nats"\nnamespace = "frombus"\n`,
  });
  expect(gw.store.kind).toBe("nats");
  expect(gw.store.location).toContain(`nats://127.0.0.1:1,${js.url}`);
  await gw.store.kvSet("p", "k", "v");
  await using ws = await openSocket(gw.wsUrl);
  await waitFor(
    async () => ((await ws.call("status")) as { result: { bus: { mode: string } } }).result.bus.mode === "nats",
  );
  await expect(startTestGateway({ toml: `[store]\nkind = "nats"\nnats_url = "nats://127.0.0.1:1"\n` })).rejects.toThrow(
    "cannot reach the nats store at nats://127.0.0.1:1",
  );
});

test("two gateways on one nats store: a conversation begun on A continues on B, which sends the model A's turns; usage counts on both", async () => {
  const seen: string[][] = [];
  const stream: StreamFn = async function* (req: ChatRequest) {
    seen.push(req.messages.map((m) => `${m.role}:${(m.parts[0] as { text?: string }).text ?? ""}`));
    yield { type: "text", text: `answer ${seen.length}` };
    yield { type: "usage", input_tokens: 5, output_tokens: 2 };
    yield { type: "done", stop_reason: "end_turn" };
  };
  const toml = `[store]\nkind = "nats"\nnats_url = "${js.url}"\nnamespace = "pair"\n`;
  await using a = await startTestGateway({ toml, streamFor: () => stream });
  await using b = await startTestGateway({ toml, streamFor: () => stream });
  await using wa = await openSocket(a.wsUrl);
  await using wb = await openSocket(b.wsUrl);
  const session = "main:ws:local:main";
  expect(((await wa.call("chat.send", { content: "first, on A" })) as { result: { text: string } }).result.text).toBe(
    "answer 1",
  );
  expect(((await wb.call("chat.send", { content: "second, on B" })) as { result: { text: string } }).result.text).toBe(
    "answer 2",
  );
  expect(seen[1]).toEqual(["user:first, on A", "assistant:answer 1", "user:second, on B"]);
  const hist = (await wa.call("chat.history", { session })) as {
    result: { messages: { seq: number; parts: { text: string }[] }[] };
  };
  expect(hist.result.messages.map((m) => [m.seq, m.parts[0]!.text])).toEqual([
    [1, "first, on A"],
    [2, "answer 1"],
    [3, "second, on B"],
    [4, "answer 2"],
  ]);
  await waitFor(async () => (await a.store.sumUsage({ session })).calls === 2);
  expect(await b.store.sumUsage({ session })).toMatchObject({ calls: 2, input_tokens: 10, output_tokens: 4 });
});

test("channel messages on two gateways sharing the nats store: a resend to the other gateway is a duplicate, hostile peers get their own sessions", async () => {
  let calls = 0;
  const stream: StreamFn = async function* (req: ChatRequest) {
    calls++;
    const last = req.messages.at(-1)!;
    yield { type: "text", text: `re: ${(last.parts[0] as { text?: string }).text ?? ""}` };
    yield { type: "done", stop_reason: "end_turn" };
  };
  const toml = `[store]\nkind = "nats"\nnats_url = "${js.url}"\nnamespace = "chan"\n\n[channels.http]\n`;
  await using a = await startTestGateway({ toml, streamFor: () => stream });
  await using b = await startTestGateway({ toml, streamFor: () => stream });
  const post = (gw: { url: string }, body: unknown) =>
    fetch(`${gw.url}/webhook/http`, { method: "POST", body: JSON.stringify(body) }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as { replies: { session: string; text: string }[]; duplicates: number },
    }));
  const first = await post(a, { peer: "a.*", text: "star", id: "m1" });
  expect(first.status).toBe(200);
  expect(first.body.replies.map((r) => [r.session, r.text])).toEqual([["main:http:default:a.*", "re: star"]]);
  const again = await post(b, { peer: "a.*", text: "star", id: "m1" });
  expect(again.body).toMatchObject({ replies: [], duplicates: 1 });
  expect(calls).toBe(1);
  const gt = await post(b, { peer: ">", text: "gt", id: "m2" });
  expect(gt.body.replies.map((r) => r.session)).toEqual(["main:http:default:>"]);
  // Each session holds its own turn only, read from either gateway.
  expect(
    (await a.store.history("main:http:default:>", { limit: 10 })).map((m) => (m.parts[0] as { text: string }).text),
  ).toEqual(["gt", "re: gt"]);
  expect(
    (await b.store.history("main:http:default:a.*", { limit: 10 })).map((m) => (m.parts[0] as { text: string }).text),
  ).toEqual(["star", "re: star"]);
  expect(await a.store.countInbound()).toEqual({ pending: 0, dead: 0 });
});

test("a webhook while the nats store is unreachable gets 503 (the platform retries), and the retry is answered once NATS is back", async () => {
  let calls = 0;
  const stream: StreamFn = async function* () {
    calls++;
    yield { type: "text", text: "answered" };
    yield { type: "done", stop_reason: "end_turn" };
  };
  await using gw = await startTestGateway({
    toml: `[store]\nkind = "nats"\nnats_url = "${js.url}"\nnamespace = "down"\n\n[channels.http]\n`,
    streamFor: () => stream,
  });
  const post = () =>
    fetch(`${gw.url}/webhook/http`, { method: "POST", body: JSON.stringify({ peer: "ada", text: "hi", id: "w1" }) });
  await js.nodes[0]!.stop();
  try {
    await waitFor(async () => (await fetch(`${gw.url}/ready`)).status === 503);
    const refused = await post();
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain("unreachable");
    expect(calls).toBe(0);
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  } finally {
    await js.nodes[0]!.start();
  }
  await waitFor(async () => (await fetch(`${gw.url}/ready`)).status === 200);
  const retried = await post();
  expect(retried.status).toBe(200);
  expect(((await retried.json()) as { replies: { text: string }[] }).replies.map((r) => r.text)).toEqual(["answered"]);
  expect(calls).toBe(1);
});
