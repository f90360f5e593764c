/** onboard's key check in-process: the outcomes a user is told about, and the key never in them (issue 9). */
import { expect, test } from "bun:test";
import { checkKey, modelsRequest } from "../../src/cli/_key-check.ts";
import { startFakeUpstream } from "../helpers/fake-upstream.ts";

test("each provider's default models endpoint, as the agent would reach it", () => {
  expect(modelsRequest("openai", "k", "").url).toBe("https://api.openai.com/v1/models");
  expect(modelsRequest("anthropic", "k", "").url).toBe("https://api.anthropic.com/v1/models");
  expect(modelsRequest("gemini", "k", "").url).toBe("https://generativelanguage.googleapis.com/v1beta/models");
  expect(modelsRequest("ollama", "", "").url).toBe("http://localhost:11434/api/tags");
  expect(modelsRequest("openai", "k", "http://127.0.0.1:9/v1/").url).toBe("http://127.0.0.1:9/v1/models");
});

test("accepted, refused, an answer that says nothing about the key, and a stalled endpoint", async () => {
  await using server = startFakeUpstream((req) => {
    if (req.path === "/ok/models") return { body: '{"data":[]}' };
    if (req.path === "/denied/models") return { status: 403, body: "{}" };
    if (req.path === "/broken/models") return { status: 502, body: "bad gateway" };
    return { status: 404, body: "{}" };
  });
  expect(await checkKey("openai", "sk-1", `${server.url}/ok`)).toEqual({
    kind: "accepted",
    url: `${server.url}/ok/models`,
  });
  expect(await checkKey("openai", "sk-1", `${server.url}/denied`)).toEqual({
    kind: "refused",
    url: `${server.url}/denied/models`,
    status: 403,
  });
  expect(await checkKey("openai", "sk-1", `${server.url}/broken`)).toEqual({
    kind: "inconclusive",
    url: `${server.url}/broken/models`,
    status: 502,
  });
});

test("an endpoint that never answers: unreachable after the timeout, the key not in the report", async () => {
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  const silent = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: async () => (await held, new Response("{}")) });
  try {
    const r = await checkKey("openai", "sk-secret-1", `http://127.0.0.1:${silent.port}/v1`, 300);
    expect(r).toEqual({
      kind: "unreachable",
      url: `http://127.0.0.1:${silent.port}/v1/models`,
      detail: "no answer within 0.3 s",
    });
  } finally {
    release();
    await silent.stop(true);
  }
});
