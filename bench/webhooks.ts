/**
 * Webhook intake under load (issue 10): webhooks accepted per second end to end — signature check,
 * `parse_incoming` in the sandbox, store, acknowledgement — for Telegram and Slack, and the latency of
 * the acknowledgement (p50 / p99), while a slow model holds every turn slot: the fake upstream never
 * answers during the run, so every turn slot stays taken and every message beyond them waits in the
 * store. Baseline in the same run: a bare Hono POST handler (parse the JSON body, answer 200) in its
 * own process, driven by the same client.
 *
 *   bun bench/webhooks.ts [--seconds 5] [--concurrency 32] [--chats 1000]
 *
 * The gateway runs as its own process (`bun src/main.ts gateway`, default max_concurrent_turns);
 * this process is the client, the fake model and the fake platforms.
 */
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { writeCredential } from "../src/config/index.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    concurrency: { type: "string", default: "32" },
    chats: { type: "string", default: "1000" },
    "serve-baseline": { type: "string" },
  },
});

// The baseline server: this same file, started as a child with --serve-baseline <port>.
if (values["serve-baseline"] !== undefined) {
  const { Hono } = await import("hono");
  const app = new Hono();
  app.post("/webhook/:channel", async (c) => {
    const body: unknown = await c.req.json();
    return c.json({ ok: body !== null, accepted: 1 });
  });
  Bun.serve({ hostname: "127.0.0.1", port: Number(values["serve-baseline"]), fetch: app.fetch });
  await new Promise(() => {});
}

const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const CHATS = Number(values.chats);
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const freePort = () => {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
};

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
            controller.enqueue(
              new TextEncoder().encode(
                'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":{"content":"late"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
              ),
            );
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
// The platforms' send APIs (never reached during the run: no turn finishes).
const platform = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: () => Response.json({ ok: true, result: { message_id: 1 } }),
});

const TELEGRAM_SECRET = "bench-telegram-secret";
const SLACK_SIGNING = "bench-slack-signing-secret-0123456";
const home = mkdtempSync(join(tmpdir(), "exoclaw-bench-webhooks-"));
writeCredential(home, "telegram_webhook_secret", TELEGRAM_SECRET);
writeCredential(home, "telegram_bot_token", "123456:bench-token");
writeCredential(home, "slack_signing_secret", SLACK_SIGNING);
writeCredential(home, "slack_bot_token", "xoxb-bench");
const api = `127.0.0.1:${platform.port}`;
writeFileSync(
  join(home, "config.toml"),
  `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "bench"\nbase_url = "http://127.0.0.1:${upstream.port}"\n\n` +
    `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["${api}"]\nconfig = { api_base = "http://${api}" }\n\n` +
    `[[plugins]]\nname = "slack"\npath = "builtin:slack"\nallowed_hosts = ["${api}"]\nconfig = { api_base = "http://${api}" }\n\n` +
    `[channels.telegram]\nsecrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }\ndm_policy = "open"\nrate_per_minute = 0\n\n` +
    `[channels.slack]\nsecrets = { signing_secret = "slack_signing_secret", bot_token = "slack_bot_token" }\ndm_policy = "open"\nrate_per_minute = 0\n`,
);

const port = freePort();
const gateway = Bun.spawn(
  [process.execPath, join(import.meta.dir, "../src/main.ts"), "gateway", "--port", String(port)],
  {
    env: { EXOCLAW_HOME: home, OPENAI_API_KEY: "sk-bench", PATH: process.env.PATH ?? "" },
    stdout: "ignore",
    stderr: "inherit",
  },
);
const baselinePort = freePort();
const baseline = Bun.spawn([process.execPath, import.meta.path, "--serve-baseline", String(baselinePort)], {
  stdout: "ignore",
  stderr: "inherit",
});

async function waitUp(url: string) {
  for (let i = 0; i < 500; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await Bun.sleep(20);
    }
  }
  throw new Error(`${url} did not start`);
}

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

/** CONCURRENCY clients posting for SECONDS; every answer must be a 200 acknowledging one message. */
async function load(make: () => Request, seconds = SECONDS) {
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
          throw new Error(`webhook answered ${res.status} ${text}`);
      }
    }),
  );
  return {
    rate: latencies.length / ((performance.now() - t0) / 1000),
    p50: pct(latencies, 0.5),
    p99: pct(latencies, 0.99),
    n: latencies.length,
  };
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
}

try {
  await waitUp(`http://127.0.0.1:${port}/health`);
  await waitUp(`http://127.0.0.1:${baselinePort}/`);
  const gw = `http://127.0.0.1:${port}`;
  // Fill every turn slot, then warm up both paths.
  await load(() => telegram(gw), 1);
  await load(() => slack(gw), 1);
  await load(() => new Request(`http://127.0.0.1:${baselinePort}/webhook/x`, { method: "POST", body: '{"a":1}' }), 1);
  const heldAtStart = held;

  const base = await load(() => telegram(`http://127.0.0.1:${baselinePort}`));
  const tg = await load(() => telegram(gw));
  const sl = await load(() => slack(gw));
  const base2 = await load(() => slack(`http://127.0.0.1:${baselinePort}`));
  const running = await metric("exoclaw_turns_running");
  const queued = await metric("exoclaw_turns_queued");

  const row = (name: string, r: Awaited<ReturnType<typeof load>>, vs?: number) =>
    `| ${name} | ${Math.round(r.rate).toLocaleString("en")}/s${vs ? ` (${((r.rate / vs) * 100).toFixed(0)}% of the baseline)` : ""} | ${r.p50.toFixed(2)} / ${r.p99.toFixed(2)} ms | ${r.n.toLocaleString("en")} |`;
  console.log(
    `${CONCURRENCY} clients in flight, ${SECONDS} s each, ${CHATS} chats; the model held ${heldAtStart} calls after the warm-up and ${held} at the end (turns running ${running}, queued in memory ${queued}, the rest in the store)\n`,
  );
  console.log("| webhooks | accepted | ack p50 / p99 | requests |");
  console.log("|---|---|---|---|");
  console.log(row("baseline: bare Hono POST handler, Telegram body", base));
  console.log(row("Telegram (secret token, parse in the sandbox, store, ack)", tg, base.rate));
  console.log(row("Slack (v0 HMAC, parse in the sandbox, store, ack)", sl, base2.rate));
  console.log(row("baseline: bare Hono POST handler, Slack body", base2));
} finally {
  gateway.kill("SIGKILL");
  baseline.kill("SIGKILL");
  await gateway.exited;
  await baseline.exited;
  for (const r of releases) r();
  await upstream.stop(true);
  await platform.stop(true);
  rmSync(home, { recursive: true, force: true });
}
