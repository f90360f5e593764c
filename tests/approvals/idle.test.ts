/**
 * A turn waiting for the operator is bounded by the approval timeout, not by the agent's
 * idle_timeout_ms: that limit is on silence from the model's HTTP stream (src/agent/idle-timeout.ts),
 * and no model request is open while a tool call waits. A real provider (OpenAI wire format, fake
 * upstream on loopback) with a 150 ms idle limit; the operator answers well after it.
 */
import { expect, test } from "bun:test";
import { startFakeUpstream } from "../helpers/fake-upstream.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";
import { openaiReply, openaiToolCall } from "../e2e/binary/_replies.ts";

type Msg = Record<string, any>;

const toolCall = () => openaiToolCall("echo", { text: "late but fine" });

test("the operator answering after the agent's idle_timeout_ms does not fail the turn", async () => {
  await using up = startFakeUpstream((req) => {
    const tool = ((req.body?.messages ?? []) as { role: string; content: string }[]).find((m) => m.role === "tool");
    return { body: tool ? openaiReply(`echo said: ${tool.content}`) : toolCall() };
  });
  const toml =
    `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o-mini"\nbase_url = "${up.url}/v1"\nidle_timeout_ms = 150\n\n` +
    `[[plugins]]\nname = "echo"\npath = "builtin:echo"\napproval = "always"\n`;
  await using gw = await startTestGateway({ toml, env: { OPENAI_API_KEY: "sk-idle-test" } });
  const deadline = Date.now() + 15_000;
  while (gw.plugins.list().every((p) => p.state !== "loaded") && Date.now() < deadline) await Bun.sleep(20);
  await using ws = await openSocket(gw.wsUrl);
  const turn = ws.call("chat.send", { content: "echo something" }, "t1");
  const ev = ((await ws.next((r) => (r.value as Msg).params?.event === "approval", 10_000)).value as Msg).params.data;
  // The operator takes several idle limits to answer (the scenario under test, not a wait for a signal).
  await Bun.sleep(600);
  await ws.call("approval.resolve", { id: ev.id, allow: true });
  const done = (await turn) as Msg;
  expect(done.result).toMatchObject({ stop_reason: "end_turn", text: "echo said: late but fine" });
});
