import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { sha256Hex } from "../../src/sandbox/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { fixturePath, pluginPath, readWasm } from "../helpers/plugins.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;

async function homeWithPlugins() {
  const home = tempDir();
  mkdirSync(join(home.path, "plugins"));
  copyFileSync(pluginPath("echo"), join(home.path, "plugins/echo.wasm"));
  copyFileSync(fixturePath("hostile"), join(home.path, "plugins/hostile.wasm"));
  const pin = async (name: string) => sha256Hex(await readWasm(join(home.path, `plugins/${name}.wasm`)));
  home.file(
    "config.toml",
    `[[plugins]]\nname = "echo"\npath = "plugins/echo.wasm"\nsha256 = "${await pin("echo")}"\n\n` +
      `[[plugins]]\nname = "hostile"\npath = "plugins/hostile.wasm"\nsha256 = "${await pin("hostile")}"\ntimeout_ms = 1500\n`,
  );
  return home;
}

describe("plugins in the gateway", () => {
  test("configured plugins load at start and are listed by plugin.list and status", async () => {
    using home = await homeWithPlugins();
    await using gw = await startTestGateway({ home: home.path });
    await using ws = await openSocket(gw.wsUrl);
    const list = ((await ws.call("plugin.list")) as Msg).result.plugins;
    expect(list.map((p: Msg) => [p.name, p.state, p.kind])).toEqual([
      ["echo", "loaded", "tool"],
      ["hostile", "loaded", "tool"],
    ]);
    expect(list[0].tools).toEqual(["echo"]);
    expect(((await ws.call("status")) as Msg).result.plugins).toEqual([
      { name: "echo", state: "loaded" },
      { name: "hostile", state: "loaded" },
    ]);
  });

  test("a plugin that loops forever is stopped while the gateway keeps answering ping", async () => {
    using home = await homeWithPlugins();
    await using gw = await startTestGateway({ home: home.path });
    await using ws = await openSocket(gw.wsUrl);
    const spinning = gw.plugins.host.callTool("hostile", "spin", {}).catch((e: Error) => e.message);
    for (let i = 0; i < 5; i++) {
      expect((await ws.call("ping")).result).toBe("pong");
      await Bun.sleep(50);
    }
    expect(await spinning).toBe("plugin hostile timed out after 1500 ms and was stopped");
    expect(await gw.plugins.host.callTool("echo", "echo", { text: "after" })).toEqual({
      content: "after",
      is_error: false,
    });
  });

  test("a plugin changed on disk after approval is refused; the gateway and other plugins carry on", async () => {
    using home = await homeWithPlugins();
    copyFileSync(fixturePath("abi2"), join(home.path, "plugins/hostile.wasm"));
    await using gw = await startTestGateway({ home: home.path });
    await using ws = await openSocket(gw.wsUrl);
    const list = ((await ws.call("plugin.list")) as Msg).result.plugins;
    const hostile = list.find((p: Msg) => p.name === "hostile");
    expect(hostile.state).toBe("error");
    expect(hostile.error).toMatch(/plugins\/hostile\.wasm changed since it was approved .*exoclaw plugin load/);
    const reload = (await ws.call("plugin.load", { name: "hostile" })) as Msg;
    expect(reload.error.code).toBe(-32004);
    expect(reload.error.message).toMatch(/changed since it was approved/);
    expect(await gw.plugins.host.callTool("echo", "echo", { text: "ok" })).toEqual({ content: "ok", is_error: false });
    expect((await ws.call("ping")).result).toBe("pong");
  });

  test("plugin.load reads the config again; plugin.unload removes; unknown names are -32006", async () => {
    using home = await homeWithPlugins();
    const config = await Bun.file(join(home.path, "config.toml")).text();
    home.file("config.toml", "");
    await using gw = await startTestGateway({ home: home.path });
    await using ws = await openSocket(gw.wsUrl);
    expect(((await ws.call("plugin.list")) as Msg).result.plugins).toEqual([]);
    home.file("config.toml", config);
    const loaded = (await ws.call("plugin.load", { name: "echo" })) as Msg;
    expect(loaded.result).toMatchObject({ name: "echo", state: "loaded", tools: ["echo"] });
    expect(((await ws.call("plugin.unload", { name: "echo" })) as Msg).result).toEqual({
      name: "echo",
      unloaded: true,
    });
    expect(((await ws.call("plugin.unload", { name: "echo" })) as Msg).error.code).toBe(-32006);
    expect(((await ws.call("plugin.load", { name: "ghost" })) as Msg).error.code).toBe(-32006);
    expect(((await ws.call("plugin.load", { name: "../x" })) as Msg).error).toMatchObject({
      code: -32602,
      data: { field: "name" },
    });
  });
});
