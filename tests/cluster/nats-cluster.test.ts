/**
 * Two gateways on a real 3-node NATS cluster with `replicas = 3` (issue 14): one NATS node is killed
 * during a burst of Telegram webhooks; a webhook refused meanwhile (503) is sent again, as Telegram
 * does, and in the end every message is answered exactly once — none lost, none answered twice.
 * Before that, a gateway started on the cluster just born is ready and answers (its first open
 * creates every stream and bucket while JetStream elects its leaders).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeCredential } from "../../src/config/index.ts";
import { anthropicReply, lastUserText } from "../e2e/binary/_replies.ts";
import type { RecordedRequest } from "../helpers/fake-upstream.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startJetStreamCluster, waitFor, type JsServers } from "../helpers/jetstream.ts";
import { tempDir } from "../helpers/temp.ts";

const SECRET = "S3cr3t_token-1";
let js: JsServers;
const sends: string[] = [];
let platform: ReturnType<typeof Bun.serve>;
let model: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  js = await startJetStreamCluster();
  platform = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as { chat_id: number; text: string };
      sends.push(body.text);
      return Response.json({
        ok: true,
        result: {
          message_id: sends.length,
          chat: { id: body.chat_id, type: "private" },
          date: 1746268800,
          text: body.text,
        },
      });
    },
  });
  model = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const text = lastUserText({ body: await req.json() } as unknown as RecordedRequest);
      return new Response(anthropicReply(`echo: ${text}`), { headers: { "content-type": "text/event-stream" } });
    },
  });
}, 60_000);
afterAll(async () => {
  await platform?.stop(true);
  await model?.stop(true);
  await js?.[Symbol.asyncDispose]();
});

function home() {
  const h = tempDir("exoclaw-r3-");
  writeCredential(h.path, "tg_secret", SECRET);
  writeCredential(h.path, "tg_bot", "987654321:AAE-cluster-token");
  writeCredential(h.path, "agent-main", "sk-ant-test");
  h.file(
    "config.toml",
    `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "http://127.0.0.1:${model.port}"\n\n` +
      `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${platform.port}"]\nconfig = { api_base = "http://127.0.0.1:${platform.port}" }\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\ndm_policy = "open"\nrate_per_minute = 0\n\n` +
      `[store]\nkind = "nats"\nnats_url = "${js.url}"\nreplicas = 3\nnamespace = "r3"\n`,
  );
  return h;
}

const update = (n: number) =>
  JSON.stringify({
    update_id: n,
    message: {
      message_id: n,
      from: { id: 9000 + (n % 8), is_bot: false, first_name: "Ada" },
      chat: { id: 9000 + (n % 8), type: "private" },
      date: 1636628439,
      text: `burst ${n}`,
    },
  });

/** Telegram's behaviour: a webhook not acknowledged with 2xx is sent again (here at once, for 40 s at most). */
async function deliver(url: string, n: number): Promise<number> {
  const end = Date.now() + 40_000;
  for (let tries = 1; ; tries++) {
    const r = await fetch(`${url}/webhook/telegram`, {
      method: "POST",
      headers: { "x-telegram-bot-api-secret-token": SECRET },
      body: update(n),
    }).catch(() => null);
    if (r?.ok) return tries;
    if (Date.now() > end) throw new Error(`webhook ${n} never acknowledged (last status ${r?.status})`);
    await Bun.sleep(200);
  }
}

// First on the cluster just started (its meta leader being elected): the gateway's first open
// creates every stream, bucket and consumer with three replicas, and must not fail or need a retry.
test("a gateway started on a fresh 3-node cluster is ready at once and answers a webhook", async () => {
  const h = home();
  await using g = await startTestGateway({ home: h.path });
  const ready = await fetch(`${g.url}/ready`);
  expect(ready.status).toBe(200);
  expect(await deliver(g.url, 1000)).toBe(1);
  await waitFor(async () => sends.includes("echo: burst 1000"));
  expect(sends).toEqual(["echo: burst 1000"]);
  h[Symbol.dispose]();
}, 60_000);

test("a NATS node killed during a burst of webhooks on two gateways (replicas 3): none lost, none answered twice", async () => {
  sends.length = 0;
  const ha = home();
  const hb = home();
  await using a = await startTestGateway({ home: ha.path });
  await using b = await startTestGateway({ home: hb.path });
  const N = 40;
  const burst = Array.from({ length: N }, (_, n) => deliver((n % 2 ? a : b).url, n));
  // Mid-burst: the node whose loss hurts most is whichever leads; any one of three must be survivable.
  await waitFor(async () => sends.length >= 5, 20_000);
  await js.nodes[1]!.stop();
  await Promise.all(burst);
  // What the gateways logged, when a wait fails (which message, which store call).
  const diag = (e: unknown) => {
    console.error(
      "answered",
      new Set(sends).size,
      "of",
      N,
      [...a.logs, ...b.logs].filter((l) => /"level":"(warn|error)"/.test(l)).join("\n"),
    );
    throw e;
  };
  await waitFor(async () => new Set(sends).size >= N, 40_000).catch(diag);
  await waitFor(async () => (await a.store.countInbound().catch(() => ({ pending: -1 }))).pending === 0, 20_000).catch(
    diag,
  );
  for (let n = 0; n < N; n++) expect(sends.filter((s) => s === `echo: burst ${n}`)).toHaveLength(1);
  expect(sends).toHaveLength(N);
  ha[Symbol.dispose]();
  hb[Symbol.dispose]();
}, 90_000);
