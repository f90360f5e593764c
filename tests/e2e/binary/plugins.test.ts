/**
 * Plugins through the compiled binary: a built-in one embedded in it and a real .wasm file
 * (tests/fixtures/plugins/hostile.ts, built by scripts/build-plugins.ts), loaded, called, failing
 * cleanly (exit 1, one line, the sandbox child stopped), and loaded into a running gateway.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { fixturePath } from "../../helpers/plugins.ts";
import { binaryHome, NATIVE, nativeBinary, runBinary, startBinaryGateway } from "../../helpers/binary.ts";

describe.if(NATIVE !== undefined)("plugins through the binary", () => {
  const home = binaryHome();

  beforeAll(async () => {
    await nativeBinary();
  }, 120_000);
  afterAll(() => home[Symbol.dispose]());

  test("plugin load builtin:echo, then plugin call runs it in the binary's own plugin-host mode", async () => {
    const load = await runBinary(home, ["plugin", "load", "builtin:echo"]);
    expect(load.stderr).toBe("");
    expect(load.code).toBe(0);
    expect(load.stdout).toContain(`loaded echo (tool, built in) into ${join(home.path, "config.toml")}`);
    expect(load.stdout).toContain("no gateway running; it takes effect at the next start");
    expect(await runBinary(home, ["plugin", "call", "echo", "echo", '{"text":"from the binary ✓"}'])).toEqual({
      code: 0,
      stdout: "from the binary ✓\n",
      stderr: "",
    });
  });

  test("a tool's own error result exits 1; bad JSON input is a usage error (2); an unknown plugin exits 1", async () => {
    expect(await runBinary(home, ["plugin", "call", "echo", "echo", '"not an object"'])).toEqual({
      code: 1,
      stdout: "input must be an object\n",
      stderr: "",
    });
    expect(await runBinary(home, ["plugin", "call", "echo", "echo", "{nope"])).toEqual({
      code: 2,
      stdout: "",
      stderr: "exoclaw: input is not valid JSON: {nope\n",
    });
    expect(await runBinary(home, ["plugin", "call", "weather", "now"])).toEqual({
      code: 1,
      stdout: "",
      stderr: `exoclaw: no [[plugins]] entry named weather in ${join(home.path, "config.toml")}\n`,
    });
  });

  test("a .wasm file is copied and pinned; what it wants is shown, not granted; a trap and a timeout each exit 1 with one clear line", async () => {
    const load = await runBinary(home, ["plugin", "load", fixturePath("hostile"), "--timeout-ms", "300"]);
    expect(load.stderr).toBe("");
    expect(load.code).toBe(0);
    expect(load.stdout).toMatch(/loaded hostile \(tool, sha256 [0-9a-f]{12}…\)/);
    expect(load.stdout).toContain("granted hosts: none; secrets: none");
    expect(load.stdout).toContain("wanted but not granted: *");
    expect(existsSync(join(home.path, "plugins/hostile.wasm"))).toBe(true);
    expect(statSync(join(home.path, "plugins/hostile.wasm")).mode & 0o777).toBe(0o600);
    expect(await Bun.file(join(home.path, "config.toml")).text()).toMatch(
      /path = "plugins\/hostile.wasm"\nsha256 = "[0-9a-f]{64}"/,
    );

    expect(await runBinary(home, ["plugin", "call", "hostile", "count", "{}"])).toEqual({
      code: 0,
      stdout: "1\n",
      stderr: "",
    });
    expect(await runBinary(home, ["plugin", "call", "hostile", "trap", "{}"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "exoclaw: plugin hostile trapped: Unreachable code should not be executed\n",
    });
    // An endless loop in wasm: only killing the binary's plugin-host child ends it.
    expect(await runBinary(home, ["plugin", "call", "hostile", "spin", "{}"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "exoclaw: plugin hostile timed out after 300 ms and was stopped\n",
    });
  });

  test("plugin load tells a running gateway, which then lists the plugin as loaded; plugin remove takes it out again", async () => {
    await using gw = await startBinaryGateway(home);
    const port = String(gw.port);
    const load = await runBinary(home, ["plugin", "load", "builtin:notes", "--port", port]);
    expect(load.stderr).toBe("");
    expect(load.stdout).toContain(`the running gateway at ws://127.0.0.1:${port}/ws applied it`);
    const list = await runBinary(home, ["plugin", "list", "--json", "--port", port]);
    expect(list.code).toBe(0);
    const plugins = (JSON.parse(list.stdout) as { plugins: { name: string; state: string }[] }).plugins;
    expect(plugins.map((p) => [p.name, p.state])).toEqual([
      ["echo", "loaded"],
      ["hostile", "loaded"],
      ["notes", "loaded"],
    ]);
    const remove = await runBinary(home, ["plugin", "remove", "hostile", "--port", port]);
    expect(remove.stderr).toBe("");
    expect(remove.stdout).toContain(`the running gateway at ws://127.0.0.1:${port}/ws applied it`);
    expect(existsSync(join(home.path, "plugins/hostile.wasm"))).toBe(false);
    const after = JSON.parse((await runBinary(home, ["plugin", "list", "--json", "--port", port])).stdout) as {
      plugins: { name: string }[];
    };
    expect(after.plugins.map((p) => p.name)).toEqual(["echo", "notes"]);
    expect(gw.stderr()).toBe("");
  });
});
