/**
 * Several gateways on NATS JetStream (issue 14): Telegram webhooks per second end to end (signature
 * check, store, the JetStream work queue, turn on a fake model that answers at once, reply sent to a
 * fake Telegram) through two gateways on one nats-server against one gateway on the sqlite store,
 * in the same run, interleaved; and the time from a gateway's SIGKILL mid-turn to its message being
 * answered by the other gateway (JetStream's ack_wait, shortened here to 2 s, dominates it).
 *
 *   bun build.ts --native && bun bench/cluster.ts [--webhooks 200] [--reps 5] [--binary PATH | --source] [--smoke]
 *
 * Needs Debian's nats-server (started here, on a free loopback port, with a temporary store dir).
 * Every gateway is its own process, the compiled binary users run (`--source`: `bun src/main.ts`);
 * this process is the client and the fakes. Every reply must be the model's answer (its turn ended
 * end_turn); anything else sent to the chat fails the run.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCredential } from "../src/config/index.ts";
import {
  benchArgs,
  fail,
  freePort,
  int,
  interleave,
  ms,
  num,
  onCleanup,
  pairRatios,
  printHeader,
  ratio,
  ROOT,
  runBench,
  spread,
  step,
  stopProcess,
  summarize,
  table,
  waitHealthy,
} from "./_lib.ts";

const args = benchArgs(
  "cluster",
  { webhooks: { type: "string" }, binary: { type: "string" }, source: { type: "boolean" } },
  600,
);
const W = num(args.values.webhooks, 200, args.smoke, 12);
const SECRET = "S3cr3t_token-1";
const BIN = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].find((p) => existsSync(p));
const BINARY = args.values.binary ?? join(ROOT, "dist/exoclaw-linux-x64");
/** Every gateway: the compiled binary users run, or `bun src/main.ts` with --source. */
const CHILD = args.values.source === true ? [process.execPath, join(ROOT, "src/main.ts")] : [BINARY];

await runBench("cluster", async () => {
  if (!BIN) throw new Error("nats-server not found (apt-get install nats-server)");
  if (args.values.source !== true && !existsSync(BINARY))
    throw new Error(`no binary at ${BINARY}: run \`bun build.ts --native\` first, pass --binary, or --source`);
  process.env.EXOCLAW_WORK_ACK_WAIT_MS = "2000";
  const natsPort = freePort();
  const natsDir = mkdtempSync(join(tmpdir(), "exoclaw-bench-js-"));
  const nats = Bun.spawn([BIN, "-a", "127.0.0.1", "-p", String(natsPort), "-js", "-sd", natsDir], {
    stdout: "ignore",
    stderr: "ignore",
  });
  onCleanup(async () => {
    nats.kill("SIGKILL");
    await nats.exited;
    rmSync(natsDir, { recursive: true, force: true });
  });
  const natsUrl = `nats://127.0.0.1:${natsPort}`;
  await step("nats-server up", 15_000, async () => {
    for (;;) {
      const ok = await Bun.connect({ hostname: "127.0.0.1", port: natsPort, socket: { data() {} } }).then(
        (s) => (s.end(), true),
        () => false,
      );
      if (ok) return;
      await Bun.sleep(50);
    }
  });

  // The fake Telegram: every sendMessage text; waiters resolve when a text arrives.
  const sent = new Map<string, number>();
  let onSend: (() => void) | null = null;
  const platform = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as { chat_id: number; text: string };
      // Only the model's answer (its turn ended end_turn) may reach the chat: anything else (an
      // error or budget notice) fails the run at once, naming it.
      if (typeof body.text !== "string" || !body.text.startsWith("echo: "))
        void fail(
          `bench cluster: a turn did not end with the model's answer; Telegram got ${JSON.stringify(body).slice(0, 200)}`,
        );
      sent.set(body.text, (sent.get(body.text) ?? 0) + 1);
      onSend?.();
      return Response.json({
        ok: true,
        result: { message_id: 1, chat: { id: body.chat_id, type: "private" }, date: 1746268800, text: body.text },
      });
    },
  });
  // The fake model (Anthropic's SSE): answers at once, except a held text (the failover case).
  let holdText = "";
  let heldArrived: (() => void) | null = null;
  const model = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const body = (await req.json()) as { messages: { role: string; content: unknown }[] };
      const last = body.messages.filter((m) => m.role === "user").at(-1)!;
      const text =
        typeof last.content === "string"
          ? last.content
          : (last.content as { text?: string }[]).map((p) => p.text ?? "").join("");
      if (text === holdText) {
        holdText = "";
        heldArrived?.();
        await new Promise(() => {});
      }
      const events = [
        {
          type: "message_start",
          message: {
            id: "m",
            type: "message",
            role: "assistant",
            model: "claude",
            content: [],
            stop_reason: null,
            usage: { input_tokens: 5, output_tokens: 1 },
          },
        },
        { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
        { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: `echo: ${text}` } },
        { type: "content_block_stop", index: 0 },
        { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 3 } },
        { type: "message_stop" },
      ];
      return new Response(events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join(""), {
        headers: { "content-type": "text/event-stream" },
      });
    },
  });
  onCleanup(() => {
    platform.stop(true);
    model.stop(true);
  });

  const homes: string[] = [];
  onCleanup(() => homes.forEach((h) => rmSync(h, { recursive: true, force: true })));
  const home = (store: string) => {
    const h = mkdtempSync(join(tmpdir(), "exoclaw-bench-cluster-"));
    homes.push(h);
    writeCredential(h, "tg_secret", SECRET);
    writeCredential(h, "tg_bot", "987654321:AAE-bench-token");
    writeCredential(h, "agent-main", "sk-ant-bench");
    Bun.write(
      join(h, "config.toml"),
      `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "http://127.0.0.1:${model.port}"\n\n` +
        `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${platform.port}"]\nconfig = { api_base = "http://127.0.0.1:${platform.port}" }\n\n` +
        `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\ndm_policy = "open"\nrate_per_minute = 0\n\n${store}`,
    );
    return h;
  };
  /** A gateway process on the home `h`: the compiled binary (`--source`: bun src/main.ts). */
  const gateway = async (h: string) => {
    const port = freePort();
    const proc = Bun.spawn([...CHILD, "gateway", "--port", String(port)], {
      env: { ...process.env, EXOCLAW_HOME: h },
      stdout: "ignore",
      stderr: "ignore",
    });
    const stop = () => stopProcess(proc);
    onCleanup(stop);
    await waitHealthy(`http://127.0.0.1:${port}/health`, proc);
    return { url: `http://127.0.0.1:${port}`, proc, stop };
  };
  let next = 1;
  const update = (n: number, text: string) =>
    JSON.stringify({
      update_id: n,
      message: {
        message_id: n,
        from: { id: 100 + (n % 50), is_bot: false, first_name: "Ada" },
        chat: { id: 100 + (n % 50), type: "private" },
        date: 1636628439,
        text,
      },
    });
  const post = (url: string, n: number, text: string) =>
    fetch(`${url}/webhook/telegram`, {
      method: "POST",
      headers: { "x-telegram-bot-api-secret-token": SECRET },
      body: update(n, text),
    });
  const waitReplies = (texts: string[]) =>
    new Promise<void>((resolve) => {
      const check = () => texts.every((t) => sent.has(`echo: ${t}`)) && (resolve(), (onSend = null));
      onSend = () => void check();
      check();
    });

  /** W webhooks (32 at a time) spread over the gateways' URLs; webhooks per second until the last reply went out. */
  const burst = async (urls: string[], tag: string): Promise<number> => {
    const texts = Array.from({ length: W }, (_, i) => `${tag} ${i}`);
    const t0 = performance.now();
    let i = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (i < W) {
          const k = i++;
          const r = await post(urls[k % urls.length]!, next++, texts[k]!);
          if (!r.ok) throw new Error(`webhook answered ${r.status}`);
        }
      }),
    );
    await waitReplies(texts);
    return (W / (performance.now() - t0)) * 1000;
  };

  printHeader(
    "cluster",
    args,
    `${W} Telegram webhooks per sample, 32 in flight, 50 chats; model and platform fakes answer at once; every gateway its own process: ${CHILD.join(" ")}`,
  );
  const rates = await interleave(args.reps, {
    jetstream: (rep) =>
      step(`jetstream rep ${rep}`, 120_000, async () => {
        const store = `[store]\nkind = "nats"\nnats_url = "${natsUrl}"\nnamespace = "bench${rep}"\n`;
        const a = await gateway(home(store));
        const b = await gateway(home(store));
        try {
          return await burst([a.url, b.url], `js${rep}`);
        } finally {
          await a.stop();
          await b.stop();
        }
      }),
    sqlite: (rep) =>
      step(`sqlite rep ${rep}`, 120_000, async () => {
        const a = await gateway(home(""));
        try {
          return await burst([a.url], `sq${rep}`);
        } finally {
          await a.stop();
        }
      }),
  });
  const js = summarize(rates.jetstream);
  const sq = summarize(rates.sqlite);
  table(
    [`store, median (min–max) of ${args.reps}`, "webhooks/s end to end", "vs sqlite, same run"],
    [
      [
        "jetstream, 2 gateways on 1 nats-server",
        spread(js, int),
        `per-pair ratio ${spread(summarize(pairRatios(rates.jetstream, rates.sqlite)), ratio)}`,
      ],
      ["sqlite, 1 gateway", spread(sq, int), ""],
    ],
  );

  // Failover: a child gateway takes a turn the model holds, is SIGKILLed, the other answers it.
  const failover: number[] = [];
  for (let rep = 0; rep < args.reps; rep++) {
    await step(`failover rep ${rep}`, 60_000, async () => {
      const store = `[store]\nkind = "nats"\nnats_url = "${natsUrl}"\nnamespace = "fail${rep}"\n`;
      const { url, proc: child } = await gateway(home(store));
      const text = `failover ${rep}`;
      holdText = text;
      const arrived = new Promise<void>((r) => (heldArrived = r));
      const r = await post(url, next++, text);
      if (!r.ok) throw new Error(`webhook answered ${r.status}`);
      await arrived;
      const b = await gateway(home(store));
      try {
        const t0 = performance.now();
        child.kill("SIGKILL");
        await child.exited;
        await waitReplies([text]);
        failover.push(performance.now() - t0);
        if (sent.get(`echo: ${text}`) !== 1)
          throw new Error(`the failed-over message was sent ${sent.get(`echo: ${text}`)} times`);
      } finally {
        await b.stop();
      }
    });
  }
  console.log("");
  table(
    ["failover", "SIGKILL → answered by the other gateway (ack_wait 2 s)"],
    [["time", spread(summarize(failover), ms)]],
  );
});
