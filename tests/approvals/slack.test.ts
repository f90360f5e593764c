/**
 * Approvals for the owner on Slack (issue 16): the built-in slack plugin (.wasm), a loopback stand-in
 * for slack.com, requests signed as Slack signs them (v0). A WebSocket turn's call of an
 * `approval = "always"` tool waits; the channel's owner gets chat.postMessage with Block Kit buttons;
 * an unsigned interactivity request is refused, a stranger's signed press decides nothing, and the
 * owner's press (form-encoded `payload`, block_actions) lets the call run. The press gets its 2xx
 * while Slack still sits on the decision message (which nothing waits for; its failure is logged).
 */
import { expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { type HeldRequest, heldRequest } from "../helpers/held.ts";
import { SLACK_SIGNING_SECRET, slackHeaders } from "../helpers/signing.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
const SIGNING = SLACK_SIGNING_SECRET;
const OWNER = "U0OWNER01";
const sign = (body: string) => ({ ...slackHeaders(body), "content-type": "application/x-www-form-urlencoded" });
/** An interactivity request as Slack sends it: `payload=<url-encoded JSON>`. */
const press = (user: string, value: string) =>
  "payload=" +
  encodeURIComponent(
    JSON.stringify({
      type: "block_actions",
      user: { id: user, username: "u" },
      api_app_id: "A0PNCHHK2",
      team: { id: "T1" },
      channel: { id: "D0OWNERDM" },
      trigger_id: `trig-${user}-${value}`,
      actions: [{ type: "button", action_id: "button_0", value, action_ts: "1.2" }],
    }),
  ).replace(/%20/g, "+");

const model: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!;
  if (last.role === "tool")
    yield { type: "text", text: `echo said: ${(last.parts[0] as { content: string }).content}` };
  else yield { type: "tool_call", id: "tu1", name: "echo", input: { text: "ünïcode and spaces" } };
  yield { type: "done", stop_reason: last.role === "tool" ? "end_turn" : "tool_use" };
};

/** Slack's Web API on loopback (every call answered as chat.postMessage) and a gateway with an owner on the slack channel. */
async function slackOwner(): Promise<
  {
    gw: TestGateway;
    sent: Msg[];
    /** Set by a test: holds the decision message (`Allowed: …`) until the test answers it, as a slow Slack would. */
    hold: HeldRequest | null;
    post: (body: string, headers: Record<string, string>) => Promise<Response>;
  } & AsyncDisposable
> {
  const sent: Msg[] = [];
  const decision: { hold: HeldRequest | null } = { hold: null };
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as Msg;
      sent.push(body);
      if (decision.hold && /^(Allowed|Denied): /.test(String(body.text))) return decision.hold.hold(req);
      return Response.json({ ok: true, channel: "D0OWNERDM", ts: "1.1" });
    },
  });
  const home = tempDir();
  writeCredential(home.path, "slack_signing_secret", SIGNING);
  writeCredential(home.path, "slack_bot_token", "xoxb-approvals-1");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "slack"\npath = "builtin:slack"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n` +
      `[[plugins]]\nname = "echo"\npath = "builtin:echo"\napproval = "always"\n\n` +
      `[channels.slack]\nsecrets = { signing_secret = "slack_signing_secret", bot_token = "slack_bot_token" }\nowner = "${OWNER}"\n`,
  );
  const gw = await startTestGateway({ home: home.path, streamFor: () => model });
  const deadline = Date.now() + 15_000;
  while (gw.plugins.list().filter((p) => p.state === "loaded").length < 2 && Date.now() < deadline) await Bun.sleep(20);
  return {
    gw,
    sent,
    get hold() {
      return decision.hold;
    },
    set hold(f) {
      decision.hold = f;
    },
    post: (body: string, headers: Record<string, string>) =>
      fetch(`${gw.url}/webhook/slack`, { method: "POST", headers, body }),
    async [Symbol.asyncDispose]() {
      await gw[Symbol.asyncDispose]();
      await api.stop(true);
      home[Symbol.dispose]();
    },
  };
}

/** The approval request's message to the owner, once it is sent. */
async function asked(sent: Msg[]): Promise<Msg> {
  for (let i = 0; i < 500 && !sent.some((m) => m.blocks); i++) await Bun.sleep(20);
  const ask = sent.find((m) => m.blocks);
  if (!ask) throw new Error("timed out waiting for the owner's message");
  return ask;
}

test("slack: the owner gets Block Kit buttons; only the owner's signed press decides", async () => {
  await using t = await slackOwner();
  const { gw, sent, post } = t;
  await using ws = await openSocket(gw.wsUrl);
  const turn = ws.call("chat.send", { content: "echo", peer: "slack-owner" }, "t1");
  const id = ((await ws.next((r) => (r.value as Msg).params?.event === "approval", 10_000)).value as Msg).params.data
    .id;
  const ask = await asked(sent);
  expect(ask.channel).toBe(OWNER);
  expect(ask.text).toContain("Approval needed: agent main wants to call echo (always)");
  const buttons = ask.blocks[1].elements;
  expect(buttons.map((b: Msg) => [b.text.text, b.value])).toEqual([
    ["Allow", `approval:allow:${id}`],
    ["Deny", `approval:deny:${id}`],
  ]);
  // Unsigned: refused at the door. Signed but pressed by someone else: nothing decided.
  expect(
    (await post(press(OWNER, buttons[0].value), { "content-type": "application/x-www-form-urlencoded" })).status,
  ).toBe(401);
  expect((await post(press("U0STRANGER", buttons[0].value), sign(press("U0STRANGER", buttons[0].value)))).status).toBe(
    200,
  );
  expect((await gw.store.getApproval(id))?.state).toBe("pending");
  // The owner's press runs it.
  const body = press(OWNER, buttons[0].value);
  expect((await post(body, sign(body))).status).toBe(200);
  expect(((await turn) as Msg).result.text).toBe("echo said: ünïcode and spaces");
  expect(await gw.store.getApproval(id)).toMatchObject({
    state: "allowed",
    decided_by: `owner:slack:A0PNCHHK2:${OWNER}`,
  });
});

test("slack: a hanging chat.postMessage of the decision does not hold up the press's 2xx; its failure is logged", async () => {
  await using t = await slackOwner();
  const held = heldRequest();
  t.hold = held;
  await using ws = await openSocket(t.gw.wsUrl);
  const turn = ws.call("chat.send", { content: "echo", peer: "slack-slow" }, "t1");
  const allow = (await asked(t.sent)).blocks[1].elements[0].value as string;
  const id = allow.slice("approval:allow:".length);
  // Slack wants the 2xx within 3 s: it comes while the decision message is still held.
  const body = press(OWNER, allow);
  expect((await t.post(body, sign(body))).status).toBe(200);
  expect(((await turn) as Msg).result.text).toBe("echo said: ünïcode and spaces");
  const answer = await held.arrived;
  expect(held.abandoned).toBe(false);
  expect(t.sent.some((m) => m.text === `Allowed: echo (${id}).`)).toBe(true);
  answer(Response.json({ ok: false, error: "channel_not_found" }));
  for (let i = 0; i < 500 && !t.gw.logs.some((l) => l.includes("approval decision not delivered")); i++)
    await Bun.sleep(20);
  expect(
    t.gw.logs.some(
      (l) =>
        l.includes("approval decision not delivered to the owner") && l.includes(id) && l.includes("channel_not_found"),
    ),
  ).toBe(true);
});
