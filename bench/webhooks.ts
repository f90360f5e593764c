/**
 * Webhook intake under load (issue 10): webhooks accepted per second end to end — signature check,
 * `parse_incoming` in the sandbox, store, acknowledgement — for Telegram and Slack, and the latency of
 * the acknowledgement (p50 / p99), while a slow model holds every turn slot: the fake upstream never
 * answers during the run, so every turn slot stays taken and every message beyond them waits in the
 * store (the bench fills all 32 default turn slots before it measures). Baseline in the same run: a bare Hono POST handler (parse the JSON body, answer 200) in its
 * own process (bench/_hono-webhook.ts), driven by the same client with the same bodies. The four
 * sides (Telegram, its baseline, Slack, its baseline) run `--reps` windows each, interleaved (the
 * order rotating rep by rep); every answer must be a 200 acknowledging one message, anything else
 * fails the run.
 *
 *   bun build.ts --native && bun bench/webhooks.ts [--seconds 5] [--concurrency 32] [--chats 1000]
 *     [--reps 5] [--binary dist/exoclaw-linux-x64 | --source] [--smoke]
 *
 * The gateway is the compiled binary users run (`--source`: `bun src/main.ts` instead), its own
 * process with the default max_concurrent_turns; this process is the client, the fake model and the
 * fake platforms.
 */
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeCredential } from "../src/config/index.ts";
import { FROM_SOURCE, startGateway } from "./_gateway.ts";
import {
  benchArgs,
  int,
  interleave,
  ms,
  num,
  onCleanup,
  pairDiffs,
  pairRatios,
  printHeader,
  ratio,
  ROOT,
  runBench,
  spread,
  step,
  summarize,
  table,
} from "./_lib.ts";

const args = benchArgs(
  "webhooks",
  {
    seconds: { type: "string" },
    concurrency: { type: "string" },
    chats: { type: "string" },
    binary: { type: "string" },
    source: { type: "boolean" },
  },
  900,
);
const { smoke, reps } = args;
const SECONDS = num(args.values.seconds, 5, smoke, 0.2);
const CONCURRENCY = num(args.values.concurrency, 32, smoke, 4);
const CHATS = num(args.values.chats, 1000, smoke, 40);
/** The gateway's default max_concurrent_turns: the turn slots the slow model must hold. */
const SLOTS = 32;
if (2 * CHATS < SLOTS) {
  console.error(
    `bench webhooks: --chats must be at least ${SLOTS / 2} (Telegram and Slack chats together fill the ${SLOTS} turn slots)`,
  );
  process.exit(2);
}
const BINARY = args.values.binary ?? join(ROOT, "dist/exoclaw-linux-x64");
const useSource = args.values.source === true;

const TELEGRAM_SECRET = "bench-telegram-secret";
const SLACK_SIGNING = "bench-slack-signing-secret-0123456";
const LATE =
  'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":{"content":"late"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n';

let seq = 0;
function telegram(base: string): Request {
  const n = ++seq;
  const chat = 100_000 + (n % CHATS);
  const body = JSON.stringify({
    update_id: n,
    message: {
      message_id: n,
      from: { id: chat, is_bot: false, first_name: "B" },
      chat: { id: chat, first_name: "B", type: "private" },
      date: 1_700_000_000,
      text: `bench ${n}`,
    },
  });
  return new Request(`${base}/webhook/telegram`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET },
    body,
  });
}
function slack(base: string): Request {
  const n = ++seq;
  const body = JSON.stringify({
    token: "t",
    team_id: "T1",
    api_app_id: "A1",
    event: {
      type: "message",
      channel: `D${n % CHATS}`,
      user: `U${n % CHATS}`,
      text: `bench ${n}`,
      ts: `1700000000.${n}`,
      channel_type: "im",
    },
    type: "event_callback",
    event_id: `Ev${n}`,
    event_time: 1_700_000_000,
  });
  const ts = Math.floor(Date.now() / 1000);
  const signature = "v0=" + createHmac("sha256", SLACK_SIGNING).update(`v0:${ts}:${body}`).digest("hex");
  return new Request(`${base}/webhook/slack`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-slack-request-timestamp": String(ts),
      "x-slack-signature": signature,
    },
    body,
  });
}

interface Window {
  rate: number;
  p50: number;
  p99: number;
  n: number;
}

/** CONCURRENCY clients posting for `seconds`; every answer must be a 200 acknowledging one message. */
async function load(make: () => Request, seconds = SECONDS): Promise<Window> {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const req = make();
        const s = performance.now();
        const res = await fetch(req);
        const text = await res.text();
        latencies.push(performance.now() - s);
        if (res.status !== 200 || !text.includes('"accepted":1'))
          throw new Error(`${new URL(req.url).pathname} answered ${res.status} ${text.slice(0, 200)}`);
      }
    }),
  );
  const l = summarize(latencies);
  return { rate: latencies.length / ((performance.now() - t0) / 1000), p50: l.median, p99: l.p99, n: l.n };
}

await runBench("webhooks", async () => {
  if (!useSource && !existsSync(BINARY))
    throw new Error(`no binary at ${BINARY}: run \`bun build.ts --native\` first, pass --binary, or --source`);
  printHeader(
    "webhooks",
    args,
    `${CONCURRENCY} clients in flight, ${SECONDS} s windows, ${CHATS} chats; gateway ${useSource ? "bun src/main.ts" : BINARY}`,
  );

  // The slow model: an OpenAI-compatible upstream that holds every request open until the end.
  let held = 0;
  const releases: (() => void)[] = [];
  const upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      await req.arrayBuffer();
      held++;
      const body = new ReadableStream({
        start(controller) {
          releases.push(() => {
            try {
              controller.enqueue(new TextEncoder().encode(LATE));
              controller.close();
            } catch {
              // the gateway went away
            }
          });
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    },
  });
  onCleanup(() => upstream.stop(true));
  // The platforms' send APIs (never reached during the run: no turn finishes).
  const platform = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => Response.json({ ok: true, result: { message_id: 1 } }),
  });
  onCleanup(() => platform.stop(true));
  const api = `127.0.0.1:${platform.port}`;
  const config =
    `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "bench"\nbase_url = "http://127.0.0.1:${upstream.port}"\n\n` +
    `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["${api}"]\nconfig = { api_base = "http://${api}" }\n\n` +
    `[[plugins]]\nname = "slack"\npath = "builtin:slack"\nallowed_hosts = ["${api}"]\nconfig = { api_base = "http://${api}" }\n\n` +
    `[channels.telegram]\nsecrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }\ndm_policy = "open"\nrate_per_minute = 0\n\n` +
    `[channels.slack]\nsecrets = { signing_secret = "slack_signing_secret", bot_token = "slack_bot_token" }\ndm_policy = "open"\nrate_per_minute = 0\n`;
  const gw = await step("start the gateway", 30_000, () =>
    startGateway(useSource ? FROM_SOURCE : [BINARY], {
      config,
      prepare: (home) => {
        writeCredential(home, "telegram_webhook_secret", TELEGRAM_SECRET);
        writeCredential(home, "telegram_bot_token", "123456:bench-token");
        writeCredential(home, "slack_signing_secret", SLACK_SIGNING);
        writeCredential(home, "slack_bot_token", "xoxb-bench");
      },
    }),
  );
  // Release the held model calls before the gateway stops (cleanups run newest first).
  onCleanup(() => releases.forEach((r) => r()));
  const floor = await step("start the bare Hono handler", 30_000, () =>
    startGateway([process.execPath, join(import.meta.dir, "_hono-webhook.ts")], { args: (port) => [String(port)] }),
  );
  const url = `http://127.0.0.1:${gw.port}`;
  const bare = `http://127.0.0.1:${floor.port}`;
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  };

  // Fill every turn slot, then warm up every side.
  await step("warm up", 60_000, async () => {
    await load(() => telegram(url), smoke ? 0.2 : 1);
    await load(() => slack(url), smoke ? 0.2 : 1);
    await load(() => telegram(bare), smoke ? 0.2 : 1);
    await load(() => slack(bare), smoke ? 0.2 : 1);
  });
  // Every turn slot must be held before anything is measured (one turn per chat at a time).
  await step(`fill all ${SLOTS} turn slots`, 60_000, async () => {
    while (held < SLOTS) {
      await load(() => telegram(url), 0.1);
      await load(() => slack(url), 0.1);
    }
  });
  const heldAtStart = held;
  const w = await step("webhook windows, interleaved", 60_000 + reps * 4 * (SECONDS * 1000 + 15_000), () =>
    interleave(reps, {
      telegram: () => load(() => telegram(url)),
      bareTelegram: () => load(() => telegram(bare)),
      slack: () => load(() => slack(url)),
      bareSlack: () => load(() => slack(bare)),
    }),
  );
  const running = await metric("exoclaw_turns_running");
  const queued = await metric("exoclaw_turns_queued");

  const rate = (xs: Window[]) => summarize(xs.map((x) => x.rate));
  const p50 = (xs: Window[]) => summarize(xs.map((x) => x.p50));
  const p99 = (xs: Window[]) => summarize(xs.map((x) => x.p99));
  const requests = (xs: Window[]) => int(xs.reduce((n, x) => n + x.n, 0));
  const vs = (a: Window[], b: Window[]) => {
    const r = summarize(
      pairRatios(
        a.map((x) => x.rate),
        b.map((x) => x.rate),
      ),
    );
    const d = summarize(
      pairDiffs(
        a.map((x) => x.p50),
        b.map((x) => x.p50),
      ),
    );
    return `per-pair ratio ${spread(r, ratio)}; ack p50 over the baseline, per pair: median ${ms(d.median)} / p90 ${ms(d.p90)}`;
  };
  const row = (label: string, a: Window[], b?: Window[]) => [
    label,
    spread(rate(a), int),
    `${spread(p50(a), ms)} / ${spread(p99(a), ms)}`,
    requests(a),
    b ? vs(a, b) : "",
  ];
  table(
    [
      `webhooks, median (min–max) of ${reps} windows of ${SECONDS} s`,
      "accepted/s",
      "ack p50 / p99",
      "requests",
      "against the bare Hono handler (same run)",
    ],
    [
      row("Telegram (secret token, parse in the sandbox, store, ack)", w.telegram, w.bareTelegram),
      row("baseline: bare Hono POST handler, Telegram body", w.bareTelegram),
      row("Slack (v0 HMAC, parse in the sandbox, store, ack)", w.slack, w.bareSlack),
      row("baseline: bare Hono POST handler, Slack body", w.bareSlack),
    ],
  );
  console.log(
    `The model held ${heldAtStart} calls after the warm-up and ${held} at the end (turns running ${running}, queued in memory ${queued}, the rest in the store).`,
  );
});
