/**
 * The compiled gateway and the signals an operator (or systemd) sends it: SIGHUP re-reads the
 * config — a new model and a new channel take effect, a broken file is refused and the gateway
 * carries on — and SIGTERM during a turn lets that turn finish and be answered before exit 0.
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
import { anthropicReply, lastUserText } from "./_replies.ts";

const TOKEN = "binary-signals-token";
const config = (url: string, model: string, extra = "") =>
  `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "${model}"\nbase_url = "${url}"\n${extra}`;

describe.if(NATIVE !== undefined)("SIGHUP: the binary re-reads its config and keeps serving", () => {
  const home = binaryHome();
  const up = startFakeUpstream((req) => ({ body: anthropicReply(`${req.body?.model} heard ${lastUserText(req)}`) }));
  let gw: BinaryGateway;
  const chat = (text: string) => runBinary(home, ["chat", "--port", String(gw.port), "--token", TOKEN, text]);
  const httpChannel = (text: string) =>
    fetch(`${gw.url}/webhook/http`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ peer: "hup", text }),
    });
  const reloads = () =>
    gw.logs.filter(
      (l) => l.msg === "config reloaded" || l.msg === "config reload failed; keeping the previous bindings",
    ).length;
  /** Sends SIGHUP and resolves with the gateway's log line about it. */
  const hup = async () => {
    const seen = reloads();
    gw.kill("SIGHUP");
    await until("the reload's log line", () => (reloads() > seen ? true : undefined));
    return gw.logs
      .filter((l) => l.msg === "config reloaded" || l.msg === "config reload failed; keeping the previous bindings")
      .at(-1)!;
  };

  beforeAll(async () => {
    await nativeBinary();
    home.file("config.toml", config(up.url, "claude-sonnet-4-5"));
    gw = await startBinaryGateway(home, { env: { EXOCLAW_TOKEN: TOKEN } });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await up[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });

  test("a changed model and a new channel take effect on SIGHUP, in the same process", async () => {
    expect((await chat("before")).stdout).toBe("claude-sonnet-4-5 heard before\n");
    expect((await httpChannel("too early")).status).toBe(404);

    home.file("config.toml", config(up.url, "claude-opus-4-1", "\n[channels.http]\n"));
    const line = await hup();
    expect(line).toMatchObject({ msg: "config reloaded", agents: 1 });

    const r = await chat("after");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("claude-opus-4-1 heard after\n");
    expect(up.requests.at(-1)!.body.model).toBe("claude-opus-4-1");
    // The channel's built-in plugin loads in the background after the reload.
    const res = await until("the new http channel to answer", async () => {
      const res = await httpChannel("hello channel");
      return res.status === 200 ? res : undefined;
    });
    expect(await res.json()).toMatchObject({
      replies: [{ peer: "hup", text: "claude-opus-4-1 heard hello channel", stop_reason: "end_turn" }],
    });
  });

  test("an invalid config on SIGHUP is refused with the reason logged; the gateway keeps the previous one and keeps serving", async () => {
    const pid = gw.proc.pid;
    home.file(
      "config.toml",
      config(up.url, "claude-haiku-4-5", '\n[[agents]]\nid = "second"\nprovider = "nobody"\nmodel = "x"\n'),
    );
    const line = await hup();
    expect(line.msg).toBe("config reload failed; keeping the previous bindings");
    expect(String(line.error)).toContain("agents[1].provider");
    expect(gw.proc.exitCode).toBeNull();
    expect(gw.proc.pid).toBe(pid);
    // (The CLI reads that file too and would refuse it: the gateway is asked over its channel.)
    const res = await httpChannel("still");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ replies: [{ text: "claude-opus-4-1 heard still" }] });
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
    expect(gw.stderr()).toBe("");
  });
});

describe.if(NATIVE !== undefined)("SIGTERM during a turn", () => {
  test("the turn finishes and is answered, then the binary exits 0 with nothing on stderr", async () => {
    // The model streams slowly: SIGTERM (what systemd sends) lands while the turn runs.
    await using up = startFakeUpstream([{ body: anthropicReply("answered before shutdown"), delayMs: 25 }]);
    using home = binaryHome();
    home.file("config.toml", config(up.url, "claude-sonnet-4-5", "\n[channels.http]\n"));
    await using gw = await startBinaryGateway(home, { env: { EXOCLAW_TOKEN: TOKEN } });
    const answer = fetch(`${gw.url}/webhook/http`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ peer: "bob", text: "hi" }),
    });
    await until("the turn's model call", () => (up.requests.length > 0 ? true : undefined));
    gw.kill("SIGTERM");
    const res = await answer;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      replies: [{ peer: "bob", text: "answered before shutdown", stop_reason: "end_turn" }],
    });
    expect(await gw.stop()).toBe(0);
    expect(gw.logs.some((l) => l.msg === "shutting down" && l.signal === "SIGTERM")).toBe(true);
    expect(gw.stderr()).not.toContain("Database has closed");
    expect(gw.stderr()).toBe("");
  });
});
