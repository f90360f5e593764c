/** The built-in discord channel plugin with the signed vectors of wire-formats B2 (RFC 8032 key). */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";

const CMD = readFileSync(join(import.meta.dir, "../fixtures/webhooks/discord_cmd_body.json"));

test("discord: PING gets PONG, a slash command is deferred then answered by editing the original response", async () => {
  const sent: { method: string; path: string; body: any }[] = [];
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      sent.push({ method: req.method, path: new URL(req.url).pathname, body: await req.json() });
      return Response.json({ id: "1" });
    },
  });
  using home = tempDir();
  writeCredential(home.path, "discord_public_key", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "discord"\npath = "builtin:discord"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}", application_id = "11869" }\n\n` +
      `[channels.discord]\nsecrets = { public_key = "discord_public_key" }\n`,
  );
  const stream: StreamFn = async function* (req) {
    yield { type: "text", text: `You asked: ${(req.messages.at(-1)!.parts[0] as { text: string }).text}` };
    yield { type: "done", stop_reason: "end_turn" };
  };
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    const post = (body: string | Uint8Array, ts: string, sig: string) =>
      fetch(`${gw.url}/webhook/discord`, { method: "POST", headers: { "content-type": "application/json", "x-signature-ed25519": sig, "x-signature-timestamp": ts }, body });
    const pingSig = "1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f08604da16f54624f38a6bc0614e4dc13cd47f0f";
    const pong = await post('{"type":1}', "1700000000", pingSig);
    expect(pong.status).toBe(200);
    expect(pong.headers.get("content-type")).toContain("application/json");
    expect(await pong.json()).toEqual({ type: 1 });
    // Discord probes with bad signatures and drops endpoints that accept them.
    expect((await post('{"type":1}', "1700000001", pingSig)).status).toBe(401);

    const cmdSig = "8a16b4c7b3b595186d9c3cfb55911bf62296f2f2d68c9ddca0312394fa7d613f78d869f6a44be7e29b3b487dcd8c922b205ac93eecbbab9ae88ddef929d97b01";
    const deferred = await post(CMD, "1700000123", cmdSig);
    expect(await deferred.json()).toEqual({ type: 5 });
    for (let i = 0; i < 100 && sent.length === 0; i++) await Bun.sleep(20);
    expect(sent).toEqual([{ method: "PATCH", path: "/api/v10/webhooks/11869/A_UNIQUE_TOKEN/messages/@original", body: { content: "You asked: cardsearch The Gitrog Monster" } }]);
    expect(await gw.store.getSession("main:discord:discord:645027906669510667")).not.toBeNull();
  } finally {
    await api.stop(true);
  }
});
