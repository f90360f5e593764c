/** The built-in whatsapp channel plugin with the signed vector of wire-formats B3. */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";

const BODY = readFileSync(join(import.meta.dir, "../fixtures/webhooks/wa_body.json"));
const SIG = "sha256=ded1d1d9621cffa39832ccf2b330fa476b4dc8ec2a5d102e1e554312b3f21d42";

test("whatsapp: GET verification by the host, a signed message answered through the Graph API, statuses ignored", async () => {
  const sent: { path: string; auth: string | null; body: any }[] = [];
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      sent.push({ path: new URL(req.url).pathname, auth: req.headers.get("authorization"), body: await req.json() });
      return Response.json({ messaging_product: "whatsapp", messages: [{ id: "wamid.X" }] });
    },
  });
  using home = tempDir();
  writeCredential(home.path, "wa_app_secret", "test_app_secret");
  writeCredential(home.path, "wa_verify", "vibecoding");
  writeCredential(home.path, "wa_token", "EAAG-access-token");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "whatsapp"\npath = "builtin:whatsapp"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n` +
      `[channels.whatsapp]\nsecrets = { app_secret = "wa_app_secret", verify_token = "wa_verify", access_token = "wa_token" }\ndm_policy = "open"\n`,
  );
  const stream: StreamFn = async function* () {
    yield { type: "text", text: "Blue and green, yes!" };
    yield { type: "done", stop_reason: "end_turn" };
  };
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    const verify = await fetch(
      `${gw.url}/webhook/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=vibecoding`,
    );
    expect(verify.status).toBe(200);
    expect(await verify.text()).toBe("1158201444");
    expect(
      (await fetch(`${gw.url}/webhook/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong`)).status,
    ).toBe(403);

    const post = (body: Uint8Array | string, sig = SIG) =>
      fetch(`${gw.url}/webhook/whatsapp`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-hub-signature-256": sig },
        body,
      });
    // Re-serializing the body (same JSON, other bytes) breaks the signature: raw bytes are verified.
    expect((await post(JSON.stringify(JSON.parse(BODY.toString()), null, 1))).status).toBe(401);
    expect((await post(BODY)).status).toBe(200);
    for (let i = 0; i < 100 && sent.length === 0; i++) await Bun.sleep(20);
    expect(sent).toEqual([
      {
        path: "/v23.0/106540352242922/messages",
        auth: "Bearer EAAG-access-token",
        body: {
          messaging_product: "whatsapp",
          recipient_type: "individual",
          to: "16505551234",
          type: "text",
          text: { preview_url: false, body: "Blue and green, yes!" },
        },
      },
    ]);
    expect(await gw.store.getSession("main:whatsapp:106540352242922:16505551234")).not.toBeNull();
  } finally {
    await api.stop(true);
  }
});
