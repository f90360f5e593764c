/**
 * What the compiled binary keeps of a conversation, read back with `exoclaw sessions show`: a turn
 * that failed at the model leaves no user message behind (a retry is stored once, and the model
 * never sees two user messages in a row), and `sessions show … | head -1` ends quietly when the
 * reader leaves early. One gateway for the whole file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startFakeUpstream } from "../../helpers/fake-upstream.ts";
import {
  type BinaryGateway,
  binaryHome,
  NATIVE,
  nativeBinary,
  runBinary,
  startBinaryGateway,
} from "../../helpers/binary.ts";
import { lastUserText, openaiReply } from "./_replies.ts";

const LONG_LINES = 20_000; // far more than a pipe holds (64 KiB), so the writer meets the closed pipe

describe.if(NATIVE !== undefined)("the binary's session history", () => {
  const home = binaryHome();
  let failNext = true;
  // The first "remember the milk" meets a 400 from the provider (not retried); the retry is answered.
  const up = startFakeUpstream((req) => {
    const text = lastUserText(req);
    if (text === "remember the milk" && failNext) {
      failNext = false;
      return {
        status: 400,
        headers: { "content-type": "application/json" },
        body: '{"error":{"message":"Invalid value for messages[0].content: unsupported part","type":"invalid_request_error","code":null}}',
      };
    }
    // In one piece: the awkward re-chunking of the other answers would cost a tick per few bytes.
    if (text === "a long answer please")
      return {
        body: [
          new TextEncoder().encode(
            openaiReply(Array.from({ length: LONG_LINES }, (_, i) => `line ${i + 1}`).join("\n")),
          ),
        ],
      };
    return { body: openaiReply(`noted: ${text}`) };
  });
  let gw: BinaryGateway;
  const port = () => String(gw.port);

  beforeAll(async () => {
    await nativeBinary();
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o-mini"\nbase_url = "${up.url}/v1"\n`,
    );
    gw = await startBinaryGateway(home, { env: { OPENAI_API_KEY: "sk-history-test-key" } });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await up[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });

  test("a turn that failed at the model, then the same message again: the history holds it once, with its answer", async () => {
    const failed = await runBinary(home, ["chat", "--port", port(), "--peer", "milk", "remember the milk"]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("unsupported part");
    const retry = await runBinary(home, ["chat", "--port", port(), "--peer", "milk", "remember the milk"]);
    expect(retry).toEqual({ code: 0, stdout: "noted: remember the milk\n", stderr: "" });
    // The retry's model call carried the message once, not after a dangling copy of itself.
    const sent = (up.requests.at(-1)!.body as { messages: { role: string; content: string }[] }).messages.filter(
      (m) => m.role !== "system",
    );
    expect(sent).toEqual([{ role: "user", content: "remember the milk" }]);

    const show = await runBinary(home, ["sessions", "show", "main:ws:local:milk", "--port", port()]);
    expect(show.stderr).toBe("");
    expect(show.code).toBe(0);
    expect(
      show.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => l.replace(/^#\d+ /, "")),
    ).toEqual(["user: remember the milk", "assistant: noted: remember the milk"]);
  });

  test("`sessions show KEY | head -1`: the first line, then a quiet exit 0 — no EPIPE stack trace", async () => {
    const long = await runBinary(home, ["chat", "--port", port(), "--peer", "long", "a long answer please"]);
    expect(long.code).toBe(0);
    const bin = await nativeBinary();
    const p = Bun.spawn(
      ["bash", "-c", `"$BIN" sessions show main:ws:local:long --port ${port()} | head -1; exit "\${PIPESTATUS[0]}"`],
      {
        cwd: home.cwd,
        env: home.env({ BIN: bin }),
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [stdout, stderr, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    expect(stdout).toMatch(/^#\d+ user: a long answer please\n$/);
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });
});
