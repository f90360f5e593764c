import { describe, expect, test } from "bun:test";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { repeated } from "../../src/cli/plugin.ts";
import { loadConfig, writeCredential } from "../../src/config/index.ts";
import { runExoclaw, spawnGateway } from "../helpers/cli.ts";
import { startOutside } from "../helpers/outside.ts";
import { fixturePath, pluginPath } from "../helpers/plugins.ts";
import { tempDir } from "../helpers/temp.ts";

const NO_GW = ["--port", "1"];

describe("exoclaw plugin", () => {
  test("inspect shows kind, tools, wants and sha256 and grants nothing", async () => {
    using home = tempDir();
    const r = await runExoclaw(["plugin", "inspect", fixturePath("hostile")], { EXOCLAW_HOME: home.path });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("hostile 6.6.6 — tool plugin (ABI 1)");
    expect(r.stdout).toContain("tools:   spin, grow, big_output");
    expect(r.stdout).toContain("wants hosts:   *");
    expect(r.stdout).toContain("wants secrets: everything");
    expect(r.stdout).toMatch(/sha256: {2}[0-9a-f]{64}/);
    expect(await Bun.file(join(home.path, "config.toml")).exists()).toBe(false);
    const j = await runExoclaw(["plugin", "inspect", pluginPath("echo"), "--json"], { EXOCLAW_HOME: home.path });
    expect(JSON.parse(j.stdout)).toMatchObject({ name: "echo", kind: "tool", abi: 1 });
  });

  test("inspect refuses what is not a plugin, with one clear line", async () => {
    using home = tempDir();
    const notWasm = home.file("evil.wasm", "#!/bin/sh\n");
    const r = await runExoclaw(["plugin", "inspect", notWasm], { EXOCLAW_HOME: home.path });
    expect(r).toMatchObject({ code: 1, stderr: "exoclaw: plugin inspect: not a wasm module\n" });
    const abi = await runExoclaw(["plugin", "inspect", fixturePath("abi2")], { EXOCLAW_HOME: home.path });
    expect(abi.stderr).toBe("exoclaw: plugin inspect: the plugin declares ABI 2; this exoclaw speaks ABI 1\n");
  });

  test("load pins and grants, call runs it under exactly those grants, remove forgets it", async () => {
    using home = tempDir();
    await using outside = startOutside();
    const env = { EXOCLAW_HOME: home.path };
    writeCredential(home.path, "api_key", "sk-cli-secret-999");
    const load = await runExoclaw(
      [
        "plugin",
        "load",
        fixturePath("hostile"),
        "--name",
        "h",
        "--allow-host",
        `127.0.0.1:${outside.port}`,
        "--allow-host=example.com",
        "--secret",
        "api_key",
        "--secret-host",
        `api_key=127.0.0.1:${outside.port}`,
        "--timeout-ms",
        "1000",
        ...NO_GW,
      ],
      env,
    );
    expect(load.stderr).toBe("");
    expect(load.stdout).toContain(`loaded h (tool, sha256`);
    expect(load.stdout).toContain(`granted hosts: 127.0.0.1:${outside.port}, example.com; secrets: api_key`);
    expect(load.stdout).toContain("wanted but not granted: *");
    expect(load.stdout).toContain("no gateway running");
    const c = loadConfig(env);
    expect(c.plugins).toEqual([
      expect.objectContaining({
        name: "h",
        path: "plugins/h.wasm",
        allowed_hosts: [`127.0.0.1:${outside.port}`, "example.com"],
        secrets: ["api_key"],
        secret_hosts: { api_key: [`127.0.0.1:${outside.port}`] },
        timeout_ms: 1000,
      }),
    ]);
    const fetched = await runExoclaw(
      ["plugin", "call", "h", "steal_secret", JSON.stringify({ arg: `${outside.url}/x`, name: "api_key" })],
      env,
    );
    expect(fetched.code).toBe(0);
    expect(fetched.stdout).toContain("Bearer ***");
    expect(fetched.stdout).not.toContain("sk-cli-secret-999");
    expect(outside.requests.at(-1)?.authorization).toBe("Bearer sk-cli-secret-999");
    const spin = await runExoclaw(["plugin", "call", "h", "spin"], env);
    expect(spin).toMatchObject({ code: 1, stderr: "exoclaw: plugin h timed out after 1000 ms and was stopped\n" });
    const list = await runExoclaw(["plugin", "list", ...NO_GW], env);
    expect(list.stdout).toBe("h  approved\n");
    const bad = await runExoclaw(["plugin", "call", "h", "count", "{nope"], env);
    expect(bad.code).toBe(2);
    const removed = await runExoclaw(["plugin", "remove", "h", ...NO_GW], env);
    expect(removed.stdout).toContain("removed h from");
    expect(loadConfig(env).plugins).toEqual([]);
    expect(await Bun.file(join(home.path, "plugins/h.wasm")).exists()).toBe(false);
    expect((await runExoclaw(["plugin", "remove", "h", ...NO_GW], env)).code).toBe(1);
  });

  test("a plugin changed after approval is refused by call and shown in list", async () => {
    using home = tempDir();
    const env = { EXOCLAW_HOME: home.path };
    await runExoclaw(["plugin", "load", pluginPath("echo"), ...NO_GW], env);
    await Bun.write(join(home.path, "plugins/echo.wasm"), Bun.file(fixturePath("hostile")));
    const call = await runExoclaw(["plugin", "call", "echo", "echo", '{"text":"x"}'], env);
    expect(call.code).toBe(1);
    expect(call.stderr).toMatch(/^exoclaw: plugin echo: .*changed since it was approved/);
    expect((await runExoclaw(["plugin", "list", ...NO_GW], env)).stdout).toMatch(
      /^echo {2}error\n {2}plugin echo: .*changed since it was approved/,
    );
  });

  test("load builtin:echo enables a plugin shipped with exoclaw: no copy, no pin, and it runs", async () => {
    using home = tempDir();
    const env = { EXOCLAW_HOME: home.path };
    const load = await runExoclaw(["plugin", "load", "builtin:echo", ...NO_GW], env);
    expect(load.stderr).toBe("");
    expect(load.stdout).toContain("loaded echo (tool, built in)");
    expect(loadConfig(env).plugins).toEqual([expect.objectContaining({ name: "echo", path: "builtin:echo" })]);
    expect(loadConfig(env).plugins[0]!.sha256).toBeUndefined();
    expect(existsSync(join(home.path, "plugins"))).toBe(false);
    expect((await runExoclaw(["plugin", "call", "echo", "echo", '{"text":"built in ✓"}'], env)).stdout).toBe(
      "built in ✓\n",
    );
    // Loading it again re-approves the same entry; an unknown built-in is a clear error.
    expect((await runExoclaw(["plugin", "load", "builtin:echo", ...NO_GW], env)).stdout).toContain("re-approved echo");
    const unknown = await runExoclaw(["plugin", "load", "builtin:nope", ...NO_GW], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("no built-in plugin builtin:nope");
  });

  test("load tells a running gateway, which then lists the plugin", async () => {
    using home = tempDir();
    const env = { EXOCLAW_HOME: home.path };
    await using gw = await spawnGateway(["--port", "0"], env);
    const load = await runExoclaw(["plugin", "load", pluginPath("echo"), "--port", String(gw.port)], env);
    expect(load.stdout).toContain(`the running gateway at ws://127.0.0.1:${gw.port}/ws applied it`);
    const list = await runExoclaw(["plugin", "list", "--port", String(gw.port)], env);
    expect(list.stdout).toBe("echo  loaded  tool  tools: echo\n");
    const removed = await runExoclaw(["plugin", "remove", "echo", "--port", String(gw.port)], env);
    expect(removed.stdout).toContain("applied it");
    expect((await runExoclaw(["plugin", "list", "--port", String(gw.port)], env)).stdout).toBe("no plugins\n");
  });

  test("a module declaring `notes` cannot take over the installed notes entry or read its state", async () => {
    using home = tempDir();
    const env = { EXOCLAW_HOME: home.path };
    expect((await runExoclaw(["plugin", "load", pluginPath("notes"), ...NO_GW], env)).code).toBe(0);
    const notesSha = loadConfig(env).plugins.find((p) => p.name === "notes")!.sha256;
    expect(
      (await runExoclaw(["plugin", "call", "notes", "remember", '{"topic":"bank","text":"PIN 4411"}'], env)).code,
    ).toBe(0);
    // The impostor declares "notes"; loaded without --name it is filed under its file's name.
    const evil = join(home.path, "Evil Plugin.wasm");
    copyFileSync(fixturePath("impostor"), evil);
    const plain = await runExoclaw(["plugin", "load", evil, ...NO_GW], env);
    expect(plain.stderr).toBe("");
    expect(plain.stdout).toContain("loaded evil-plugin (tool");
    // Asking for the name outright is refused while notes pins another module.
    const clash = await runExoclaw(["plugin", "load", evil, "--name", "notes", ...NO_GW], env);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain("a plugin named notes is already configured");
    expect(clash.stderr).toContain("--replace");
    const c = loadConfig(env);
    expect(c.plugins.map((p) => p.name).sort()).toEqual(["evil-plugin", "notes"]);
    expect(c.plugins.find((p) => p.name === "notes")!.sha256).toBe(notesSha);
    expect((await runExoclaw(["plugin", "call", "evil-plugin", "recall", "{}"], env)).stdout).toBe("nothing\n");
    // Re-approving the same module under its own name is fine; --replace is the operator's explicit choice.
    expect(
      (await runExoclaw(["plugin", "load", pluginPath("notes"), "--allow-host", "example.com", ...NO_GW], env)).code,
    ).toBe(0);
    const replaced = await runExoclaw(["plugin", "load", evil, "--name", "notes", "--replace", ...NO_GW], env);
    expect(replaced.code).toBe(0);
    expect(loadConfig(env).plugins.find((p) => p.name === "notes")!.sha256).not.toBe(notesSha);
  });

  test("a plugin's escape sequences never reach the operator's terminal through plugin call", async () => {
    using home = tempDir();
    const env = { EXOCLAW_HOME: home.path };
    const data = join(home.path, "data");
    (await import("node:fs")).mkdirSync(data);
    home.file("data/x.txt", "\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07line1\nline2\x9b2J");
    expect(
      (
        await runExoclaw(
          ["plugin", "load", fixturePath("hostile"), "--name", "h", "--allow-path", `${data}:/data`, ...NO_GW],
          env,
        )
      ).code,
    ).toBe(0);
    const r = await runExoclaw(["plugin", "call", "h", "read_file", '{"arg":"/data/x.txt"}'], env);
    expect(r.stdout).toBe("\\x1b]0;pwned\\x07\\x1b]52;c;ZXZpbA==\\x07line1\nline2\\x9b2J\n");
    const j = await runExoclaw(["plugin", "call", "h", "read_file", '{"arg":"/data/x.txt"}', "--json"], env);
    expect(j.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    expect(JSON.parse(j.stdout)).toEqual({
      content: "\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07line1\nline2\x9b2J",
      is_error: false,
    });
  });

  test("--timeout-ms over a minute is refused", async () => {
    using home = tempDir();
    const r = await runExoclaw(["plugin", "load", pluginPath("echo"), "--timeout-ms", "600000", ...NO_GW], {
      EXOCLAW_HOME: home.path,
    });
    expect(r).toMatchObject({ code: 2, stderr: "exoclaw: --timeout-ms: at most 60000 (a minute), got 600000\n" });
  });

  test("repeated flags keep every value", () => {
    expect(repeated(["x", "--allow-host", "a", "--allow-host=b", "--name", "n"], "--allow-host")).toEqual(["a", "b"]);
    expect(() => repeated(["--secret"], "--secret")).toThrow("--secret needs a value");
  });
});

describe("exoclaw secret set", () => {
  test("stores stdin as a mode-600 credential that plugins can be granted", async () => {
    using home = tempDir();
    const proc = Bun.spawn([process.execPath, join(import.meta.dir, "../../src/main.ts"), "secret", "set", "my_key"], {
      env: { EXOCLAW_HOME: home.path, PATH: process.env.PATH ?? "" },
      stdin: new TextEncoder().encode("s3cr3t-value\n"),
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await proc.exited).toBe(0);
    expect(await new Response(proc.stdout).text()).toBe(
      `stored my_key in ${home.path}/credentials/my_key.key (mode 600)\n`,
    );
    const file = join(home.path, "credentials/my_key.key");
    expect(await Bun.file(file).text()).toBe("s3cr3t-value\n");
    expect((await import("node:fs")).statSync(file).mode & 0o777).toBe(0o600);
    const bad = await runExoclaw(["secret", "set", "../etc"], { EXOCLAW_HOME: home.path });
    expect(bad).toMatchObject({ code: 2, stderr: 'exoclaw: secret name "../etc" must match [a-z0-9_-]+\n' });
  });
});
