import { describe, expect, test } from "bun:test";
import { runExoclaw, spawnGateway } from "../helpers/cli.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
const AGENTS = '[[agents]]\nid = "main"\n\n[[agents]]\nid = "family"\nprovider = "ollama"\nmodel = "llama3"\n\n';

describe("reloading bindings without a restart", () => {
  test("config.reload swaps the bindings; routing follows at once", async () => {
    using home = tempDir();
    home.file("config.toml", AGENTS);
    await using gw = await startTestGateway({ home: home.path });
    const mum = { channel: "telegram", account: "bot1", peer: "1001" };
    expect(gw.app.route(mum)).toEqual({ agent: "main", session: "main:telegram:bot1:1001", matched_by: "default" });
    home.file("config.toml", AGENTS + '[[bindings]]\nagent = "family"\nchannel = "telegram"\npeer = "1001"\n');
    await using ws = await openSocket(gw.wsUrl);
    const r = (await ws.call("config.reload")) as Msg;
    expect(r.result).toEqual({ file: `${home.path}/config.toml`, bindings: 1, agents: ["main", "family"] });
    expect(gw.app.route(mum)).toEqual({
      agent: "family",
      session: "family:telegram:bot1:1001",
      matched_by: "binding.peer",
    });
    expect(((await ws.call("status")) as Msg).result.router).toEqual({ bindings: 1 });
    const agents = ((await ws.call("agent.list")) as Msg).result.agents;
    expect(agents.map((a: Msg) => [a.id, a.provider, a.default])).toEqual([
      ["main", "anthropic", true],
      ["family", "ollama", false],
    ]);
  });

  test("an invalid config on reload is refused and the old bindings stay", async () => {
    using home = tempDir();
    home.file("config.toml", AGENTS + '[[bindings]]\nagent = "family"\npeer = "7"\n');
    await using gw = await startTestGateway({ home: home.path });
    home.file("config.toml", AGENTS + '[[bindings]]\nagent = "ghost"\npeer = "7"\n');
    await using ws = await openSocket(gw.wsUrl);
    const r = (await ws.call("config.reload")) as Msg;
    expect(r.error.code).toBe(-32602);
    expect(r.error.message).toBe(`${home.path}/config.toml: bindings[0].agent: no agent with id "ghost"`);
    expect(gw.app.route({ channel: "ws", account: "local", peer: "7" }).agent).toBe("family");
  });

  test("SIGHUP reloads a running gateway process", async () => {
    using home = tempDir();
    home.file("config.toml", AGENTS);
    const env = { EXOCLAW_HOME: home.path };
    await using gw = await spawnGateway(["--port", "0"], env);
    const bindings = async () =>
      JSON.parse((await runExoclaw(["status", "--json", "--port", String(gw.port)], env)).stdout).router.bindings;
    expect(await bindings()).toBe(0);
    home.file(
      "config.toml",
      AGENTS + '[[bindings]]\nagent = "family"\nchannel = "discord"\n\n[[bindings]]\nagent = "main"\nguild = "g1"\n',
    );
    process.kill(gw.pid, "SIGHUP");
    for (let i = 0; i < 100 && (await bindings()) !== 2; i++) await Bun.sleep(50);
    expect(await bindings()).toBe(2);
    expect(gw.lines.join("\n")).toContain('"msg":"config reloaded"');
  });
});

test("config.reload picks up a newly configured channel, loading its built-in plugin", async () => {
  using home = tempDir();
  home.file("config.toml", AGENTS);
  await using gw = await startTestGateway({
    home: home.path,
    streamFor: () =>
      async function* () {
        yield { type: "text" as const, text: "hi back" };
        yield { type: "done" as const, stop_reason: "end_turn" as const };
      },
  });
  const post = () =>
    fetch(`${gw.url}/webhook/http`, { method: "POST", body: JSON.stringify({ peer: "p", text: "hi" }) });
  expect((await post()).status).toBe(404);
  home.file("config.toml", AGENTS + "[channels.http]\n");
  await using ws = await openSocket(gw.wsUrl);
  await ws.call("config.reload");
  let r = await post();
  for (let i = 0; i < 100 && r.status !== 200; i++) r = (await Bun.sleep(20), await post());
  expect(r.status).toBe(200);
  expect(((await r.json()) as { replies: { text: string }[] }).replies[0]?.text).toBe("hi back");
});

describe("a reload whose channel has no secret keeps the running config (SPEC §13)", () => {
  const BROKEN =
    AGENTS +
    '[[bindings]]\nagent = "family"\npeer = "7"\n\n[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\n';

  test("config.reload is refused with the credential and the fix; bindings and channels stay as they were", async () => {
    using home = tempDir();
    home.file("config.toml", AGENTS);
    await using gw = await startTestGateway({ home: home.path });
    home.file("config.toml", BROKEN);
    await using ws = await openSocket(gw.wsUrl);
    const r = (await ws.call("config.reload")) as Msg;
    expect(r.error.message).toContain("channel telegram: its webhook_secret secret, credential tg_secret");
    expect(r.error.message).toContain("run `exoclaw secret set tg_secret`");
    expect(gw.app.route({ channel: "ws", account: "local", peer: "7" }).agent).toBe("main");
    expect((await fetch(`${gw.url}/webhook/telegram`, { method: "POST", body: "{}" })).status).toBe(404);
  });

  test("SIGHUP with a broken channel logs the error and the gateway serves on with its old config", async () => {
    using home = tempDir();
    home.file("config.toml", AGENTS);
    const env = { EXOCLAW_HOME: home.path };
    await using gw = await spawnGateway(["--port", "0"], env);
    home.file("config.toml", BROKEN);
    process.kill(gw.pid, "SIGHUP");
    const failed = () => gw.lines.find((l) => l.includes("config reload failed"));
    for (let i = 0; i < 200 && !failed(); i++) await Bun.sleep(25);
    expect(failed()).toContain("credential tg_secret");
    const status = await runExoclaw(["status", "--json", "--port", String(gw.port)], env);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).router.bindings).toBe(0);
  });
});
