/**
 * A request whose turn waits for the operator is not cut by the HTTP idle timeout: Bun closes a
 * connection whose streamed answer has gone silent for `idleTimeout` seconds (10 by default), and
 * `/v1/chat/completions` with `stream: true` and `/mcp` (an SSE answer) send nothing while a tool
 * call waits — the default approval timeout is 5 minutes. The gateway's idle timeout is shrunk to
 * 1 s (a test seam, GatewayOptions.idleTimeoutS); both requests wait longer than that and still get
 * their answers (without RouteAuth.holdOpen both connections are reset and this test fails).
 */
import { expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { StreamFn } from "../../src/agent/loop.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
const TOKEN = "long-wait-token-123456";

/** Says a word (so a streamed answer has begun), calls echo once, then answers with what echo said. */
const model: StreamFn = async function* (req) {
  const tool = req.messages.findLast((m) => m.role === "tool");
  if (!tool) {
    yield { type: "text", text: "asking… " };
    yield { type: "tool_call", id: "tu0", name: "echo", input: { text: "worth the wait" } };
    yield { type: "done", stop_reason: "tool_use" };
    return;
  }
  yield { type: "text", text: `echo said: ${(tool.parts[0] as { content: string }).content}` };
  yield { type: "done", stop_reason: "end_turn" };
};

test("/v1 (streamed) and /mcp requests whose tool call waits for approval longer than the idle timeout get their answers", async () => {
  const toml = `[gateway]\nopenai_compat = true\nmcp = true\n\n[[plugins]]\nname = "echo"\npath = "builtin:echo"\napproval = "always"\n`;
  await using gw = await startTestGateway({ toml, token: TOKEN, streamFor: () => model, gateway: { idleTimeoutS: 1 } });
  const loaded = Date.now() + 15_000;
  while (gw.plugins.list().every((p) => p.state !== "loaded") && Date.now() < loaded) await Bun.sleep(20);

  const completion = fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({
      model: "exoclaw:main",
      stream: true,
      messages: [{ role: "user", content: "echo something" }],
    }),
  }).then((r) => r.text());
  const mcp = new Client({ name: "long-wait", version: "1" });
  await mcp.connect(
    new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
    }),
  );
  const asked = mcp.callTool({ name: "ask_main", arguments: { message: "echo something", session: "mcp-wait" } });

  await using operator = await openSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
  let pending: Msg[] = [];
  const deadline = Date.now() + 10_000;
  while (pending.length < 2 && Date.now() < deadline) {
    pending = ((await operator.call("approval.list")) as Msg).result.approvals;
    if (pending.length < 2) await Bun.sleep(20);
  }
  expect(pending).toHaveLength(2);
  // The operator answers after the idle timeout has passed (the scenario under test, not a wait for a
  // signal): Bun checks idle connections every 4 s, so a silent one is cut 1–5 s after going silent.
  await Bun.sleep(5_500);
  for (const p of pending) await operator.call("approval.resolve", { id: p.id, allow: true });

  const streamed = await completion;
  expect(streamed).toContain("echo said: worth the wait");
  expect(streamed.trim().endsWith("data: [DONE]")).toBe(true);
  expect(await asked).toMatchObject({ content: [{ type: "text", text: "asking… echo said: worth the wait" }] });
  await mcp.close();
});
