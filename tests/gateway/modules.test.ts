/**
 * What a reload applies, per capability module (issue 11): each test changes the config file,
 * reloads through `config.reload` as an operator would, and checks what a user notices — an endpoint
 * that now answers or not, the bus's mode, or the keys the gateway says need a restart.
 */
import { describe, expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { createNatsBus } from "../../src/bus/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startNatsServer } from "../helpers/nats.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
const TOKEN = "modules-test-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };

describe("chat module: openai_compat and mcp follow a reload", () => {
  test("openai_compat turned on serves /v1/models at once; turned off it is a 404 again", async () => {
    using home = tempDir();
    home.file("config.toml", "");
    await using gw = await startTestGateway({ home: home.path, token: TOKEN });
    await using ws = await openSocket(gw.wsUrl, { headers: auth });
    expect((await fetch(`${gw.url}/v1/models`, { headers: auth })).status).toBe(404);
    home.file("config.toml", "[gateway]\nopenai_compat = true\n");
    const r = (await ws.call("config.reload")) as Msg;
    expect(r.result.restart_required).toBeUndefined();
    const on = await fetch(`${gw.url}/v1/models`, { headers: auth });
    expect(on.status).toBe(200);
    expect(((await on.json()) as Msg).data.map((m: Msg) => m.id)).toEqual(["exoclaw:main"]);
    home.file("config.toml", "[gateway]\nopenai_compat = false\n");
    await ws.call("config.reload");
    const off = await fetch(`${gw.url}/v1/models`, { headers: auth });
    expect(off.status).toBe(404);
    expect(((await off.json()) as Msg).error.code).toBe("not_found");
  });

  test("mcp turned on by a reload answers /mcp; without a token the reload is refused and nothing changes", async () => {
    using home = tempDir();
    home.file("config.toml", "");
    {
      await using gw = await startTestGateway({ home: home.path, token: TOKEN });
      await using ws = await openSocket(gw.wsUrl, { headers: auth });
      expect((await fetch(`${gw.url}/mcp`, { method: "POST" })).status).toBe(404);
      home.file("config.toml", "[gateway]\nmcp = true\n");
      expect(((await ws.call("config.reload")) as Msg).error).toBeUndefined();
      // Mounted now: the MCP endpoint's own answer to a request without the Bearer.
      const r = await fetch(`${gw.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate")).toBe("Bearer");
    }
    home.file("config.toml", '[[agents]]\nid = "main"\n');
    await using gw = await startTestGateway({ home: home.path });
    await using ws = await openSocket(gw.wsUrl);
    home.file("config.toml", '[[agents]]\nid = "main"\n\n[[agents]]\nid = "second"\n\n[gateway]\nmcp = true\n');
    const refused = (await ws.call("config.reload")) as Msg;
    expect(refused.error.message).toContain("gateway.mcp = true needs a token");
    // All or nothing: the agents of the refused file did not come in either.
    expect(((await ws.call("agent.list")) as Msg).result.agents.map((a: Msg) => a.id)).toEqual(["main"]);
    expect((await fetch(`${gw.url}/mcp`, { method: "POST" })).status).toBe(404);
  });
});

describe("keys only a restart applies are said, not silently kept", () => {
  test("a changed store kind, [[plugins]] entry or listener setting is listed in restart_required and logged; the gateway keeps serving", async () => {
    using home = tempDir();
    home.file("config.toml", "");
    await using gw = await startTestGateway({ home: home.path });
    await using ws = await openSocket(gw.wsUrl);
    home.file(
      "config.toml",
      '[gateway]\nport = 7777\nmax_concurrent_turns = 4\n\n[store]\nkind = "memory"\n\n[[plugins]]\nname = "echo"\npath = "builtin:echo"\n',
    );
    const r = (await ws.call("config.reload")) as Msg;
    // loadConfig's port override (the test's port 0) wins, as a --port flag would: the file's port is not a change.
    expect(r.result.restart_required.map((n: Msg) => n.key).sort()).toEqual(["plugins.echo", "store.kind"]);
    expect(r.result.restart_required.find((n: Msg) => n.key === "plugins.echo").reason).toContain(
      "exoclaw plugin load echo",
    );
    expect(gw.logs.some((l) => l.includes("config change needs a restart: store.kind"))).toBe(true);
    // Still serving on the same store, with the reloadable part applied.
    expect(((await ws.call("status")) as Msg).result.store.kind).toBe("sqlite");
    home.file("config.toml", '[gateway]\nallowed_origins = ["https://chat.example.com"]\n');
    const again = (await ws.call("config.reload")) as Msg;
    // Back to what runs for store and plugins; one listener key changed.
    expect(again.result.restart_required).toEqual([
      { key: "gateway.allowed_origins", reason: "the listener reads it at start" },
    ]);
    // `plugin load` applies an entry now: the next reload has nothing to say about it.
    home.file("config.toml", '[[plugins]]\nname = "echo"\npath = "builtin:echo"\n');
    expect(((await ws.call("config.reload")) as Msg).result.restart_required).toEqual([
      {
        key: "plugins.echo",
        reason: "[[plugins]] entries are loaded at start; run `exoclaw plugin load echo` to apply it now",
      },
    ]);
    expect(((await ws.call("plugin.load", { name: "echo" })) as Msg).error).toBeUndefined();
    expect(((await ws.call("config.reload")) as Msg).result.restart_required).toBeUndefined();
  });
});

describe("bus module: [bus] nats_url follows a reload", () => {
  test("from in-process to NATS: status names the server and accepted channel messages reach it; back to in-process", async () => {
    await using nats = await startNatsServer();
    using home = tempDir();
    home.file("config.toml", "[channels.http]\n");
    const stream = async function* () {
      yield { type: "text" as const, text: "ok" };
      yield { type: "done" as const, stop_reason: "end_turn" as const };
    };
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    await using ws = await openSocket(gw.wsUrl);
    const bus = async () => ((await ws.call("status")) as Msg).result.bus;
    expect(await bus()).toEqual({ mode: "local" });
    home.file("config.toml", `[channels.http]\n\n[bus]\nnats_url = "${nats.url}"\n`);
    expect(((await ws.call("config.reload")) as Msg).result.restart_required).toBeUndefined();
    for (let i = 0; i < 200 && (await bus()).mode !== "nats"; i++) await Bun.sleep(25);
    expect(await bus()).toEqual({ mode: "nats", url: nats.url });
    const listener = createNatsBus({ url: nats.url, log: silentLogger });
    try {
      for (let i = 0; i < 200 && listener.mode !== "nats"; i++) await Bun.sleep(25);
      const sub = listener.subscribe("exoclaw.http.>");
      // A subscription is live once the server has it: flush by a round trip of our own.
      const probe = listener.subscribe("probe");
      for (let i = 0; i < 100; i++) {
        await listener.publish("probe", new Uint8Array([1]));
        if (await Promise.race([probe.next().then(() => true), Bun.sleep(50).then(() => false)])) break;
      }
      const r = await fetch(`${gw.url}/webhook/http`, {
        method: "POST",
        body: JSON.stringify({ peer: "p1", text: "hi", id: "m1" }),
      });
      expect(r.status).toBe(200);
      const m = await Promise.race([sub.next(), Bun.sleep(3000).then(() => null)]);
      expect(m?.value?.subject).toBe("exoclaw.http.default.p1");
    } finally {
      await listener.close();
    }
    home.file("config.toml", "[channels.http]\n");
    await ws.call("config.reload");
    expect(await bus()).toEqual({ mode: "local" });
  });
});

describe("channels module: built-in channel plugins load through the plugin registry", () => {
  test("a configured channel's built-in plugin is listed like any plugin; one the registry refuses shows in plugin.list, /ready and status", async () => {
    using home = tempDir();
    home.file("config.toml", "[channels.http]\n");
    await using gw = await startTestGateway({ home: home.path });
    await using ws = await openSocket(gw.wsUrl);
    const list = async () => ((await ws.call("plugin.list")) as Msg).result.plugins as Msg[];
    expect((await list()).map((p) => [p.name, p.state, p.kind])).toEqual([["http", "loaded", "channel"]]);
    // The path the channels module takes for a built-in it needs (src/channels/module.ts), with one
    // that cannot load: a refusal is recorded, never thrown.
    const entry = {
      name: "ghost",
      path: "builtin:ghost",
      allowed_hosts: [],
      allowed_paths: {},
      secrets: [],
      memory_mb: 32,
      timeout_ms: 10_000,
      config: {},
    };
    await gw.plugins.require([entry], gw.home);
    expect((await list()).find((p) => p.name === "ghost")).toEqual({
      name: "ghost",
      state: "error",
      error: "plugin ghost: no built-in plugin builtin:ghost",
    });
    const ready = (await (await fetch(`${gw.url}/ready`)).json()) as Msg;
    expect(ready.plugins).toEqual({ loaded: 1, failed: ["ghost"] });
    expect(((await ws.call("status")) as Msg).result.plugins).toContainEqual({
      name: "ghost",
      state: "error",
      error: "plugin ghost: no built-in plugin builtin:ghost",
    });
    expect(gw.logs.some((l) => l.includes('"msg":"channel plugin refused"') && l.includes("ghost"))).toBe(true);
  });
});

describe("memory module: [memory] follows a reload", () => {
  test("semantic memory turned off by a reload: the next turn has no memory tools and no recall", async () => {
    using home = tempDir();
    home.file("config.toml", "[memory]\nsemantic = true\n");
    const seen: { tools: string[]; system: string }[] = [];
    const stream: StreamFn = async function* (req) {
      seen.push({ tools: req.tools.map((t) => t.name), system: req.system ?? "" });
      yield { type: "text", text: "ok" };
      yield { type: "done", stop_reason: "end_turn" };
    };
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    await using ws = await openSocket(gw.wsUrl);
    await gw.store.addFact("main", "ws:local:ada", "Ada likes green tea");
    await ws.call("chat.send", { content: "which tea?", peer: "ada" });
    expect(seen[0]!.tools).toEqual(["memory_save", "memory_search"]);
    expect(seen[0]!.system).toContain("Ada likes green tea");
    home.file("config.toml", "[memory]\nsemantic = false\n");
    expect(((await ws.call("config.reload")) as Msg).result.restart_required).toBeUndefined();
    await ws.call("chat.send", { content: "which tea?", peer: "ada" });
    expect(seen[1]!.tools).toEqual([]);
    expect(seen[1]!.system).not.toContain("green tea");
  });
});
