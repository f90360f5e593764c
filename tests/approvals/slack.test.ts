/**
 * Approvals for the owner on Slack (issue 16): the built-in slack plugin (.wasm), a loopback stand-in
 * for slack.com, requests signed as Slack signs them (v0). A WebSocket turn's call of an
 * `approval = "always"` tool waits; the channel's owner gets chat.postMessage with Block Kit buttons;
 * an unsigned interactivity request is refused, a stranger's signed press decides nothing, and the
 * owner's press (form-encoded `payload`, block_actions) lets the call run.
 */
import { expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
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

test("slack: the owner gets Block Kit buttons; only the owner's signed press decides", async () => {
  const sent: Msg[] = [];
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => (
      sent.push((await req.json()) as Msg), Response.json({ ok: true, channel: "D0OWNERDM", ts: "1.1" })
    ),
  });
  using home = tempDir();
  writeCredential(home.path, "slack_signing_secret", SIGNING);
  writeCredential(home.path, "slack_bot_token", "xoxb-approvals-1");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "slack"\npath = "builtin:slack"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n` +
      `[[plugins]]\nname = "echo"\npath = "builtin:echo"\napproval = "always"\n\n` +
      `[channels.slack]\nsecrets = { signing_secret = "slack_signing_secret", bot_token = "slack_bot_token" }\nowner = "${OWNER}"\n`,
  );
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => model });
    const deadline = Date.now() + 15_000;
    while (gw.plugins.list().filter((p) => p.state === "loaded").length < 2 && Date.now() < deadline)
      await Bun.sleep(20);
    await using ws = await openSocket(gw.wsUrl);
    const turn = ws.call("chat.send", { content: "echo", peer: "slack-owner" }, "t1");
    const id = ((await ws.next((r) => (r.value as Msg).params?.event === "approval", 10_000)).value as Msg).params.data
      .id;
    for (let i = 0; i < 200 && !sent.some((m) => m.blocks); i++) await Bun.sleep(20);
    const ask = sent.find((m) => m.blocks)!;
    expect(ask.channel).toBe(OWNER);
    expect(ask.text).toContain("Approval needed: agent main wants to call echo (always)");
    const buttons = ask.blocks[1].elements;
    expect(buttons.map((b: Msg) => [b.text.text, b.value])).toEqual([
      ["Allow", `approval:allow:${id}`],
      ["Deny", `approval:deny:${id}`],
    ]);
    const post = (body: string, headers: Record<string, string>) =>
      fetch(`${gw.url}/webhook/slack`, { method: "POST", headers, body });
    // Unsigned: refused at the door. Signed but pressed by someone else: nothing decided.
    expect(
      (await post(press(OWNER, buttons[0].value), { "content-type": "application/x-www-form-urlencoded" })).status,
    ).toBe(401);
    expect(
      (await post(press("U0STRANGER", buttons[0].value), sign(press("U0STRANGER", buttons[0].value)))).status,
    ).toBe(200);
    expect((await gw.store.getApproval(id))?.state).toBe("pending");
    // The owner's press runs it.
    const body = press(OWNER, buttons[0].value);
    expect((await post(body, sign(body))).status).toBe(200);
    expect(((await turn) as Msg).result.text).toBe("echo said: ünïcode and spaces");
    expect(await gw.store.getApproval(id)).toMatchObject({
      state: "allowed",
      decided_by: `owner:slack:A0PNCHHK2:${OWNER}`,
    });
  } finally {
    await api.stop(true);
  }
});
