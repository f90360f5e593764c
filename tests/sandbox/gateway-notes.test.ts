/**
 * Finding 9 end to end: two people talk to the same gateway; the model (a scripted stream) calls
 * the built-in notes plugin for each. Mallory's turn must not see what Carol's turn remembered.
 */
import { describe, expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import type { ChatRequest, StreamEvent } from "../../src/agent/types.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

/** A scripted model: asks for one tool call per turn, then reports what the tool said. */
function model(toolFor: (userText: string) => { name: string; input: unknown }) {
  const toolResults: string[] = [];
  const stream: StreamFn = async function* (req: ChatRequest) {
    const last = req.messages.at(-1)!;
    const part = last.parts[0] as { type?: string; text?: string; content?: string };
    if (last.role === "user" && part.text !== undefined) {
      const call = toolFor(part.text);
      const events: StreamEvent[] = [
        { type: "tool_call", id: `tu${toolResults.length}`, ...call } as StreamEvent,
        { type: "done", stop_reason: "tool_use" },
      ];
      yield* events;
      return;
    }
    toolResults.push(part.content ?? "");
    yield { type: "text", text: `tool said: ${part.content}` };
    yield { type: "done", stop_reason: "end_turn" };
  };
  return { stream, toolResults };
}

describe("notes through a gateway turn", () => {
  test("Mallory's turn cannot recall what Carol's turn remembered", async () => {
    const m = model((text) =>
      text.startsWith("remember")
        ? { name: "remember", input: { topic: "bank", text: "Carol's PIN is 4411" } }
        : { name: "recall", input: { topic: "bank" } },
    );
    await using gw = await startTestGateway({
      toml: '[[plugins]]\nname = "notes"\npath = "builtin:notes"\n',
      streamFor: () => m.stream,
    });
    await using ws = await openSocket(gw.wsUrl);
    const send = async (peer: string, content: string) =>
      ((await ws.call("chat.send", { content, peer })) as { result: { text: string } }).result.text;
    expect(await send("carol", "remember my PIN")).toBe("tool said: remembered under bank (1 notes)");
    expect(await send("mallory", "recall bank")).toBe("tool said: no notes about bank");
    expect(await send("carol", "recall bank")).toBe("tool said: - Carol's PIN is 4411");
  });
});
