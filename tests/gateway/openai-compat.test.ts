/** The official `openai` npm client, as a real client, against our /v1 endpoint. */
import { describe, expect, test } from "bun:test";
import OpenAI from "openai";
import type { StreamFn } from "../../src/agent/loop.ts";
import type { ChatRequest } from "../../src/agent/types.ts";
import { startTestGateway } from "../helpers/gateway.ts";

const TOKEN = "compat-token-123456";
const requests: ChatRequest[] = [];
const stream: StreamFn = async function* (req) {
  requests.push(structuredClone(req));
  const last = req.messages.at(-1)!.parts[0] as { text: string };
  for (const piece of ["Echo: ", last.text, " ✓"]) yield { type: "text", text: piece };
  yield { type: "usage", input_tokens: 11, output_tokens: 4 };
  yield { type: "done", stop_reason: "end_turn" };
};
const start = (toml = "[gateway]\nopenai_compat = true\n", token: string | undefined = TOKEN) =>
  startTestGateway({ toml, streamFor: () => stream, ...(token && { token }) });

describe("OpenAI-compatible endpoint", () => {
  test("non-streaming completion through the official client", async () => {
    await using gw = await start();
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: TOKEN });
    const r = await client.chat.completions.create({
      model: "exoclaw:main",
      messages: [
        { role: "system", content: "Answer in French." },
        { role: "user", content: "earlier question" },
        { role: "assistant", content: "earlier answer" },
        { role: "user", content: "héllo" },
      ],
    });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0]!.message).toMatchObject({ role: "assistant", content: "Echo: héllo ✓" });
    expect(r.choices[0]!.finish_reason).toBe("stop");
    expect(r.usage).toEqual({ prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 });
    const seen = requests.at(-1)!;
    expect(seen.system).toBe("Answer in French.");
    expect(seen.messages.map((m) => [m.role, (m.parts[0] as { text: string }).text])).toEqual([
      ["user", "earlier question"],
      ["assistant", "earlier answer"],
      ["user", "héllo"],
    ]);
    // Stateless without the session header: nothing stored.
    expect(await gw.store.countSessions()).toBe(0);
  });

  test("streaming completion through the official client, with usage", async () => {
    await using gw = await start();
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: TOKEN });
    const chunks = await client.chat.completions.create({
      model: "exoclaw:main",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "stream me" }],
    });
    let text = "";
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of chunks) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("Echo: stream me ✓");
    expect(finish).toBe("stop");
    expect(usage).toEqual({ prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 });
  });

  test("x-exoclaw-session continues a stored session", async () => {
    await using gw = await start();
    const client = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: TOKEN,
      defaultHeaders: { "x-exoclaw-session": "alice" },
    });
    await client.chat.completions.create({ model: "exoclaw:main", messages: [{ role: "user", content: "one" }] });
    await client.chat.completions.create({ model: "exoclaw:main", messages: [{ role: "user", content: "two" }] });
    expect(requests.at(-1)!.messages.map((m) => (m.parts[0] as { text: string }).text)).toEqual([
      "one",
      "Echo: one ✓",
      "two",
    ]);
    expect((await gw.store.getSession("main:openai:local:alice"))?.message_count).toBe(4);
  });

  test("models, auth and errors", async () => {
    await using gw = await start();
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: TOKEN });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["exoclaw:main"]);
    const wrong = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "wrong", maxRetries: 0 });
    // The client's promises are thenables, not Promises: settle them explicitly.
    const settle = (p: PromiseLike<unknown>) =>
      Promise.resolve(p).then(
        () => null,
        (e: unknown) => e,
      );
    expect(await settle(wrong.models.list())).toMatchObject({ status: 401 });
    expect(
      await settle(client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] })),
    ).toMatchObject({ status: 404, code: "model_not_found" });
    const bad = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: "{not json",
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
  });

  test("the endpoint does not exist unless openai_compat = true", async () => {
    await using gw = await start("", undefined);
    expect((await fetch(`${gw.url}/v1/models`)).status).toBe(404);
  });
});

test("a page on another origin cannot make a loopback gateway run a turn", async () => {
  await using gw = await start("[gateway]\nopenai_compat = true\n", "");
  const before = requests.length;
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "text/plain", origin: "https://evil.example" },
    body: JSON.stringify({ model: "exoclaw:main", messages: [{ role: "user", content: "spend tokens" }] }),
  });
  expect(res.status).toBe(403);
  expect(requests.length).toBe(before);
  const same = await fetch(`${gw.url}/v1/models`, { headers: { origin: gw.url } });
  expect(same.status).toBe(200);
});
