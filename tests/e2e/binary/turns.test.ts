/**
 * Turns that do not end at once or normally, in the compiled binary: at a terminal `exoclaw chat`
 * shows a spinner while the model thinks; an answer cancelled mid-stream is stored as cancelled (not
 * as if complete) and its model call is still counted; an interactive `exoclaw chat` outlives a
 * gateway restart (SIGTERM, then a new gateway on the same port, as systemd does it), sending a line
 * typed meanwhile once the gateway is back. Two gateway processes, one after the other, on one state
 * directory.
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
  until,
} from "../../helpers/binary.ts";
import { expectSpinnerUntilAnswer, openTerminal } from "../../helpers/tmux.ts";
import { openSocket } from "../../helpers/ws.ts";
import { anthropicReply, lastUserText } from "./_replies.ts";

const PARTIAL = "Once upon a time";

describe.if(NATIVE !== undefined)("the binary's slow, cancelled and interrupted turns", () => {
  const home = binaryHome();
  // "a long story" streams its first words, then hangs until the gateway hangs up.
  const story = anthropicReply(PARTIAL);
  const up = startFakeUpstream((req) =>
    lastUserText(req) === "a long story"
      ? { body: story, hangAfterBytes: Buffer.byteLength(story.slice(0, story.indexOf("event: content_block_stop"))) }
      : { body: anthropicReply(`You said: ${lastUserText(req)}`) },
  );
  // The "thinker" agent's model answers only once the test has seen the spinner.
  let release = () => {};
  const released = new Promise<void>((r) => (release = r));
  const thinker = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch() {
      await released;
      return new Response(anthropicReply("The answer is 42."), { headers: { "content-type": "text/event-stream" } });
    },
  });
  let gw: BinaryGateway;
  const port = () => String(gw.port);

  beforeAll(async () => {
    await nativeBinary();
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "${up.url}"\n\n` +
        `[[agents]]\nid = "thinker"\nprovider = "anthropic"\nmodel = "claude-opus-4-1"\nbase_url = "http://127.0.0.1:${thinker.port}"\n`,
    );
    gw = await startBinaryGateway(home, { env: { ANTHROPIC_API_KEY: "sk-ant-binary-turns" } });
  }, 120_000);

  afterAll(async () => {
    release();
    await gw?.stop();
    await thinker.stop(true);
    await up[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });

  test("at a terminal (tmux), chat shows a spinner until the first text arrives, then erases it", async () => {
    const bin = await nativeBinary();
    const env = Object.entries(home.env())
      .map(([k, v]) => `${k}='${v}'`)
      .join(" ");
    const cmd = `cd '${home.cwd}' && env -i ${env} '${bin}' chat --agent thinker --port ${port()} 'what is it'`;
    try {
      using term = openTerminal("bin-chat", cmd);
      await expectSpinnerUntilAnswer(term, release, "The answer is 42.");
    } finally {
      release();
    }
  });

  test("chat.cancel mid-answer: stop_reason cancelled, the partial answer stored as cancelled, the model call counted", async () => {
    await using ws = await openSocket(`ws://127.0.0.1:${gw.port}/ws`);
    ws.sendJson({
      jsonrpc: "2.0",
      id: "story",
      method: "chat.send",
      params: { content: "a long story", peer: "story" },
    });
    await ws.next(
      (m) => (m.value as { method?: string; params?: { id?: string; event?: string } }).params?.event === "text",
    );
    expect((await ws.call("chat.cancel", { id: "story" })).result).toEqual({ cancelled: 1 });
    const done = await ws.next((m) => (m.value as { id?: unknown }).id === "story");
    expect(done.value).toMatchObject({ result: { stop_reason: "cancelled", text: PARTIAL } });
    await until("the upstream to see the hang-up", () => (up.requests.at(-1)?.aborted ? true : undefined));

    const show = await runBinary(home, ["sessions", "show", "main:ws:local:story", "--json", "--port", port()]);
    expect(show.code).toBe(0);
    const { messages } = JSON.parse(show.stdout) as {
      messages: { role: string; parts: { text?: string }[]; meta?: { stop_reason?: string } }[];
    };
    expect(messages.map((m) => [m.role, m.parts.map((p) => p.text).join(""), m.meta?.stop_reason ?? null])).toEqual([
      ["user", "a long story", null],
      ["assistant", PARTIAL, "cancelled"],
    ]);
    const usage = await runBinary(home, ["usage", "--json", "--session", "main:ws:local:story", "--port", port()]);
    expect(usage.code).toBe(0);
    // The provider's final counts never came: the call is counted at the local estimate, not as free.
    const { all } = JSON.parse(usage.stdout) as { all: { calls: number; input_tokens: number; output_tokens: number } };
    expect(all.calls).toBe(1);
    expect(all.input_tokens).toBeGreaterThan(0);
    expect(all.output_tokens).toBeGreaterThan(0);
  });

  test("interactive chat across a gateway restart: it says so, and sends what was typed meanwhile once the new gateway is up", async () => {
    const bin = await nativeBinary();
    const chat = Bun.spawn([bin, "chat", "--port", port(), "--peer", "restart"], {
      cwd: home.cwd,
      env: home.env(),
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    let out = "";
    let err = "";
    const read = (s: ReadableStream<Uint8Array>, add: (t: string) => void) =>
      (async () => {
        const d = new TextDecoder();
        for await (const c of s) add(d.decode(c, { stream: true }));
      })();
    const reading = Promise.all([read(chat.stdout, (t) => (out += t)), read(chat.stderr, (t) => (err += t))]);
    const type = (line: string) => {
      chat.stdin.write(line + "\n");
      chat.stdin.flush();
    };
    try {
      type("first");
      await until("the first answer", () => (out.includes("You said: first\n") ? true : undefined));
      const oldPort = gw.port;
      expect(await gw.stop()).toBe(0);
      await until("the reconnecting notice", () => (err.includes("gateway gone, reconnecting…\n") ? true : undefined));
      type("while it was down");
      gw = await startBinaryGateway(home, { port: oldPort, env: { ANTHROPIC_API_KEY: "sk-ant-binary-turns" } });
      await until(
        "the answer to the line typed meanwhile",
        () => (out.includes("You said: while it was down\n") ? true : undefined),
        20_000,
      );
      chat.stdin.end();
      expect(await chat.exited).toBe(0);
      await reading;
      expect(out).toBe("You said: first\nYou said: while it was down\n");
      expect(err).toContain(`reconnected to ws://127.0.0.1:${oldPort}/ws`);
      expect(err).not.toContain("    at ");
    } finally {
      chat.kill();
    }
  }, 60_000);
});
