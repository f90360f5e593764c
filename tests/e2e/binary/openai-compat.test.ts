/**
 * The compiled binary's OpenAI-compatible endpoint (`[gateway] openai_compat = true`) with the
 * official `openai` SDK as the client: models, a plain and a streamed completion, a stored session,
 * and the token check. Behind the gateway, the agent's own model is a fake OpenAI upstream.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { startFakeUpstream } from "../../helpers/fake-upstream.ts";
import { type BinaryGateway, binaryHome, NATIVE, nativeBinary, startBinaryGateway } from "../../helpers/binary.ts";
import { lastUserText, openaiReply } from "./_replies.ts";

const TOKEN = "binary-openai-compat-token";

describe.if(NATIVE !== undefined)("the binary's OpenAI-compatible endpoint through the openai SDK", () => {
  const home = binaryHome();
  const up = startFakeUpstream((req) => ({ body: openaiReply(`réponse à « ${lastUserText(req)} » ✓`) }));
  let gw: BinaryGateway;
  let client: OpenAI;

  beforeAll(async () => {
    await nativeBinary();
    home.file(
      "config.toml",
      `[gateway]\nopenai_compat = true\n\n[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o-mini"\nbase_url = "${up.url}/v1"\n`,
    );
    gw = await startBinaryGateway(home, { env: { EXOCLAW_TOKEN: TOKEN } });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await up[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });

  test("models.list names the agents as exoclaw:<agent>", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["exoclaw:main"]);
  });

  test("chat.completions.create: the agent's answer, finish_reason stop, the upstream's usage; the system message reached the model", async () => {
    const r = await client.chat.completions.create({
      model: "exoclaw:main",
      messages: [
        { role: "system", content: "Answer in French." },
        { role: "user", content: "bonjour" },
      ],
    });
    expect(r.object).toBe("chat.completion");
    expect(r.model).toBe("exoclaw:main");
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]!.message).toMatchObject({ role: "assistant", content: "réponse à « bonjour » ✓" });
    expect(r.choices[0]!.finish_reason).toBe("stop");
    expect(r.usage).toEqual({ prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 });
    const sent = up.requests.at(-1)!.body as { model: string; messages: { role: string; content: string }[] };
    expect(sent.model).toBe("gpt-4o-mini");
    expect(sent.messages).toEqual([
      { role: "system", content: expect.stringContaining("Answer in French.") },
      { role: "user", content: "bonjour" },
    ]);
  });

  test("stream: true — the SDK reads OpenAI's chunk format to the end, with the usage chunk", async () => {
    const stream = await client.chat.completions.create({
      model: "exoclaw:main",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "stream me" }],
    });
    let text = "";
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? "";
        finish = choice.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("réponse à « stream me » ✓");
    expect(finish).toBe("stop");
    expect(usage).toEqual({ prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 });
  });

  test("x-exoclaw-session keeps the conversation in the gateway: the second turn's model call carries the first", async () => {
    const session = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: TOKEN,
      maxRetries: 0,
      defaultHeaders: { "x-exoclaw-session": "alice" },
    });
    await session.chat.completions.create({ model: "exoclaw:main", messages: [{ role: "user", content: "one" }] });
    await session.chat.completions.create({ model: "exoclaw:main", messages: [{ role: "user", content: "two" }] });
    const sent = up.requests.at(-1)!.body as { messages: { role: string; content: string }[] };
    expect(sent.messages.filter((m) => m.role !== "system")).toEqual([
      { role: "user", content: "one" },
      { role: "assistant", content: "réponse à « one » ✓" },
      { role: "user", content: "two" },
    ]);
  });

  test("a wrong token is the SDK's AuthenticationError (401), and no model is asked", async () => {
    const before = up.requests.length;
    const wrong = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "not-the-token", maxRetries: 0 });
    const err = await wrong.chat.completions
      .create({ model: "exoclaw:main", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
    const unknown = await client.chat.completions
      .create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect(up.requests.length).toBe(before);
  });
});
