/**
 * Fault injection (issue 15): the chat platform's API misbehaves while the gateway sends a reply. A
 * raw TCP stand-in for api.telegram.org (so it can do what no HTTP server library would) first
 * never answers, then answers half a response and drops the connection, then accepts. The reply
 * stays pending in the outbox through both failures, is retried from the stored reply (the model is
 * asked once), and is delivered once: nothing lost, nothing doubled.
 */
import { expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";
import { eventually } from "../fuzz/_fuzz.ts";

type Mode = "hang" | "reset" | "accept";

/** An HTTP/1.1 server on a raw socket: the n-th request gets `modes[n]` (then "accept"). */
function rawPlatform(modes: Mode[]) {
  const seen: { mode: Mode; text: string }[] = [];
  const buffers = new Map<unknown, string>();
  const server = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket, chunk) {
        const buf = (buffers.get(socket) ?? "") + new TextDecoder().decode(chunk);
        buffers.set(socket, buf);
        const head = buf.indexOf("\r\n\r\n");
        if (head === -1) return;
        const length = Number(/content-length: *(\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
        if (buf.length < head + 4 + length) return;
        buffers.set(socket, "");
        const text = (JSON.parse(buf.slice(head + 4, head + 4 + length)) as { text: string }).text;
        const mode = modes[seen.length] ?? "accept";
        seen.push({ mode, text });
        if (mode === "hang") return; // never a byte back, connection left open
        const body = JSON.stringify({
          ok: true,
          result: {
            message_id: 7,
            from: { id: 987654321, is_bot: true, first_name: "Exo" },
            chat: { id: 42, type: "private" },
            date: 1746268800,
            text,
          },
        });
        const response = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
        if (mode === "reset") {
          socket.write(response.slice(0, response.indexOf("\r\n\r\n") + 10));
          socket.terminate();
          return;
        }
        socket.write(response);
      },
      close(socket) {
        buffers.delete(socket);
      },
    },
  });
  return { port: server.port, seen, stop: () => server.stop(true) };
}

test("a platform that hangs, then resets mid-answer: the reply stays pending, is retried, and is delivered once", async () => {
  const platform = rawPlatform(["hang", "reset"]);
  using home = tempDir();
  let asked = 0;
  const stream: StreamFn = async function* () {
    asked++;
    yield { type: "text", text: "the one reply" };
    yield { type: "done", stop_reason: "end_turn" };
  };
  try {
    writeCredential(home.path, "tg_secret", "S3cr3t_token-1");
    writeCredential(home.path, "tg_bot", "987654321:AAE-secret-token");
    home.file(
      "config.toml",
      `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\ntimeout_ms = 400\nallowed_hosts = ["127.0.0.1:${platform.port}"]\nconfig = { api_base = "http://127.0.0.1:${platform.port}" }\n\n` +
        `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\ndm_policy = "open"\n`,
    );
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream, retryIntervalMs: 50 });
    const update = JSON.stringify({
      update_id: 77,
      message: {
        message_id: 77,
        from: { id: 42, is_bot: false, first_name: "Ada" },
        chat: { id: 42, type: "private" },
        date: 1636628439,
        text: "hello",
      },
    });
    const r = await fetch(`${gw.url}/webhook/telegram`, {
      method: "POST",
      headers: { "x-telegram-bot-api-secret-token": "S3cr3t_token-1" },
      body: update,
    });
    expect(r.status).toBe(200);
    // While the platform hangs, the message waits in the outbox with its reply stored.
    expect(await eventually(async () => ((await gw.store.pendingInbound(10))[0]?.attempts ?? 0) >= 1, 10_000)).toBe(
      true,
    );
    const waiting = (await gw.store.pendingInbound(10))[0]!;
    expect(waiting.id).toBe("telegram:77");
    expect(waiting.last_error ?? "").not.toBe("");
    // Then the reset, then the accepted send: nothing pending any more.
    expect(await eventually(async () => (await gw.store.pendingInbound(10)).length === 0, 15_000)).toBe(true);
    expect(platform.seen.map((s) => s.mode)).toEqual(["hang", "reset", "accept"]);
    expect(platform.seen.every((s) => s.text === "the one reply")).toBe(true);
    expect(asked).toBe(1); // retried from the stored reply, not by asking the model again
    expect((await gw.store.history("main:telegram:bot:42", { limit: 10 })).map((m) => m.role)).toEqual([
      "user",
      "assistant",
    ]);
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  } finally {
    platform.stop();
  }
});
