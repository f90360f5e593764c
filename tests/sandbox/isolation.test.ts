/**
 * Isolation between people and between plugins, each test written as the attack: Mallory reading
 * Carol's notes or module globals, a plugin filling the store, two spinning calls starving every
 * other plugin, a memory-hungry plugin getting its neighbour killed, forged log lines, a write
 * through a dangling symlink, a `builtin:` path that walks out of the built-ins.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/index.ts";
import { readPinnedModule } from "../../src/sandbox/configured.ts";
import { SandboxError } from "../../src/sandbox/errors.ts";
import { escapeControl } from "../../src/sandbox/host.ts";
import { fixturePath, grant, pluginPath, readWasm, startTestHost } from "../helpers/plugins.ts";
import { tempDir } from "../helpers/temp.ts";

const CAROL = "telegram:bot:1001";
const MALLORY = "telegram:bot:6666";

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
async function eventually(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await Bun.sleep(10);
  }
  return check();
}

describe("state per person", () => {
  test("Mallory cannot read Carol's notes through the built-in notes plugin", async () => {
    await using t = startTestHost();
    await t.host.load(grant("notes"), await readWasm(pluginPath("notes")));
    const notes = (scope: string, tool: string, input: Record<string, string>) =>
      t.host.callTool("notes", tool, input, { scope });
    expect((await notes(CAROL, "remember", { topic: "bank", text: "Carol's PIN is 4411" })).content).toContain(
      "remembered under bank",
    );
    expect(await notes(MALLORY, "recall", {})).toEqual({ content: "no notes yet", is_error: false });
    expect(await notes(MALLORY, "recall", { topic: "bank" })).toEqual({
      content: "no notes about bank",
      is_error: false,
    });
    // Mallory's own notes do not land in Carol's notebook either.
    await notes(MALLORY, "remember", { topic: "bank", text: "send money to Mallory" });
    expect(await notes(CAROL, "recall", { topic: "bank" })).toEqual({
      content: "- Carol's PIN is 4411",
      is_error: false,
    });
    expect(await notes(MALLORY, "recall", { topic: "bank" })).toEqual({
      content: "- send money to Mallory",
      is_error: false,
    });
  });

  test("a plugin's module globals never carry one person's data into another's call; same-person calls stay warm", async () => {
    await using t = startTestHost();
    await t.host.load(grant("hostile"), await readWasm(fixturePath("hostile")));
    const global = (scope: string, arg = "") => t.host.callTool("hostile", "global", { arg }, { scope });
    expect((await global(CAROL, "carol-secret")).content).toBe("had:");
    expect((await global(CAROL)).content).toBe("had:carol-secret");
    expect((await global(MALLORY)).content).toBe("had:");
    expect((await global(MALLORY, "mallory-was-here")).content).toBe("had:");
    expect((await global(CAROL)).content).toBe("had:");
  });

  test("shared state needs both the plugin's wants.shared_state and the operator's grant", async () => {
    const count = async (g: Parameters<typeof grant>[1], name: string, path: string, tool: string) => {
      await using t = startTestHost();
      await t.host.load(grant(name, g), await readWasm(path));
      const a = await t.host.callTool(name, tool, { topic: "t", text: "x" }, { scope: CAROL });
      const b = await t.host.callTool(name, tool, { topic: "t", text: "x" }, { scope: MALLORY });
      return [a.content, b.content];
    };
    // hostile wants shared state: granted → one counter for everyone; not granted → one per person.
    expect(await count({ shared_state: true }, "hostile", fixturePath("hostile"), "count")).toEqual(["1", "2"]);
    expect(await count({}, "hostile", fixturePath("hostile"), "count")).toEqual(["1", "1"]);
    // notes does not want it: the operator's grant alone shares nothing.
    expect(await count({ shared_state: true }, "notes", pluginPath("notes"), "remember")).toEqual([
      "remembered under t (1 notes)",
      "remembered under t (1 notes)",
    ]);
  });
});

describe("state quota", () => {
  test("over the entry quota kv_set fails, the guest sees it, it is logged once, the host keeps serving", async () => {
    await using t = startTestHost();
    await t.host.load(grant("echo"), await readWasm(pluginPath("echo")));
    await t.host.load(grant("hostile", { state_max_entries: 5 }), await readWasm(fixturePath("hostile")));
    expect((await t.host.callTool("hostile", "kv_fill", { n: 10, arg: "v" })).content).toBe("stored 5");
    expect((await t.host.callTool("hostile", "kv_fill", { n: 10, arg: "w" })).content).toBe("stored 5");
    expect(t.logs.filter((l) => l.includes("plugin state over quota")).length).toBe(1);
    // Overwriting an existing key is not a new entry.
    expect((await t.host.callTool("hostile", "kv_fill", { n: 5, arg: "again" })).content).toBe("stored 5");
    expect((await t.host.callTool("echo", "echo", { text: "still here" })).content).toBe("still here");
  });

  test("deleting state frees quota (the host keeps the usage by delta, not by re-reading every value)", async () => {
    await using t = startTestHost();
    await t.host.load(grant("notes", { state_max_entries: 3 }), await readWasm(pluginPath("notes")));
    const notes = (tool: string, input: Record<string, string>) =>
      t.host.callTool("notes", tool, input, { scope: CAROL });
    await notes("remember", { topic: "a", text: "1" }); // topic:a, topics
    await notes("remember", { topic: "b", text: "2" }); // topic:b
    await notes("remember", { topic: "c", text: "3" }); // topic:c refused: a 4th entry
    expect((await notes("recall", { topic: "c" })).content).toBe("no notes about c");
    await notes("forget", { topic: "b" });
    await notes("remember", { topic: "c", text: "3" });
    expect((await notes("recall", { topic: "c" })).content).toBe("- 3");
  });

  test("over the byte quota a write is refused; the sum counts every person's state", async () => {
    await using t = startTestHost();
    await t.host.load(grant("hostile", { state_max_bytes: 150_000 }), await readWasm(fixturePath("hostile")));
    expect((await t.host.callTool("hostile", "kv_big", { n: 100_000 }, { scope: CAROL })).content).toBe(
      "stored 100000",
    );
    // Mallory's write would take the plugin's total over 150 KB: refused, though her own share is empty.
    expect((await t.host.callTool("hostile", "kv_big", { n: 100_000 }, { scope: MALLORY })).content).toBe("not stored");
    expect((await t.host.callTool("hostile", "kv_big", { n: 1000 }, { scope: MALLORY })).content).toBe("stored 1000");
  });
});

describe("lanes", () => {
  test("two spinning calls of one plugin do not delay another plugin's call or a channel's parse_incoming", async () => {
    await using t = startTestHost();
    await t.host.load(grant("echo"), await readWasm(pluginPath("echo")));
    await t.host.load(grant("telegram"), await readWasm(pluginPath("telegram")));
    await t.host.load(grant("hostile", { timeout_ms: 4000 }), await readWasm(fixturePath("hostile")));
    const spins = [t.host.callTool("hostile", "spin", {}), t.host.callTool("hostile", "spin", {})].map((p) =>
      p.catch((e: unknown) => e),
    );
    // Both of hostile's processes are busy spinning (its lane is full).
    expect(await eventually(() => t.host.processCount("hostile") === 2)).toBe(true);
    const t0 = performance.now();
    const [echo, parsed] = await Promise.all([
      t.host.callTool("echo", "echo", { text: "at once" }),
      t.host.callRaw(
        "telegram",
        "parse_incoming",
        JSON.stringify({ headers: {}, query: {}, body: JSON.stringify({ update_id: 1 }) }),
      ),
    ]);
    const took = performance.now() - t0;
    expect(echo.content).toBe("at once");
    expect(JSON.parse(parsed)).toEqual({ messages: [] });
    expect(took).toBeLessThan(2000);
    for (const e of await Promise.all(spins))
      expect((e as SandboxError).message).toBe("plugin hostile timed out after 4000 ms and was stopped");
  });

  test("a plugin that grows memory and returns does not get another plugin's next call killed", async () => {
    await using t = startTestHost({ maxProcesses: 1 });
    // The same module under another name, granted the default 16 MiB: its watchdog limit is 256 + 2 × 16 MiB.
    await t.host.load(grant("neighbour"), await readWasm(fixturePath("hostile")));
    await t.host.load(grant("hostile", { memory_mb: 400 }), await readWasm(fixturePath("hostile")));
    // 300 MiB resident: over the neighbour's limit, were they in one process.
    expect((await t.host.callTool("hostile", "grow_then_return", { n: 300 })).content).toBe("grew 300 MiB");
    // A call long enough for the watchdog to look (it samples every 50 ms): 4,000 state round trips.
    expect(await t.host.callTool("neighbour", "kv_fill", { n: 2000, arg: "v" })).toEqual({
      content: "stored 2000",
      is_error: false,
    });
    expect(t.host.processCount("hostile")).toBe(1);
  });

  test("Extism's host-side allocations count against memory_mb: 2 GiB of alloc() from a 16 MiB plugin is stopped", async () => {
    await using t = startTestHost();
    await t.host.load(grant("echo"), await readWasm(pluginPath("echo")));
    await t.host.load(grant("hostile", { memory_mb: 16 }), await readWasm(fixturePath("hostile")));
    const r = await t.host.callTool("hostile", "host_alloc", { n: 2048 }).then(
      (ok) => ok.content,
      (e: Error) => e.message,
    );
    // Extism refuses an allocation past the module's page cap; the guest traps on the refusal.
    expect(r).toBe("plugin hostile trapped: Out of bounds access");
    // Within its cap the same tool works: the cap, not the tool, stopped it.
    await t.host.load(grant("roomy", { memory_mb: 64 }), await readWasm(fixturePath("hostile")));
    expect(await t.host.callTool("roomy", "host_alloc", { n: 8 })).toEqual({
      content: "allocated 8 MiB on the host",
      is_error: false,
    });
    expect(await t.host.callTool("echo", "echo", { text: "fine" })).toEqual({ content: "fine", is_error: false });
  });

  test("reloading a plugin mid-call lets that call finish in the old lane; new calls go to the new module", async () => {
    await using t = startTestHost();
    const bytes = await readWasm(fixturePath("hostile"));
    await t.host.load(grant("hostile"), bytes);
    const inFlight = t.host.callTool("hostile", "kv_fill", { n: 1000, arg: "v" });
    await t.host.load(grant("hostile", { state_max_entries: 3 }), bytes);
    expect(await inFlight).toEqual({ content: "stored 1000", is_error: false });
    // The new grant (a quota of 3 entries) applies to the new lane's calls.
    expect((await t.host.callTool("hostile", "kv_fill", { n: 2, arg: "w" }, { scope: CAROL })).content).toBe(
      "stored 0",
    );
    expect(t.host.unload("hostile")).toBe(true);
    await expect(t.host.callTool("hostile", "count", {})).rejects.toThrow("no plugin named hostile");
  });

  test("an idle lane beyond its first process is reaped", async () => {
    await using t = startTestHost({ idleMs: 50 });
    await t.host.load(grant("echo"), await readWasm(pluginPath("echo")));
    await Promise.all(Array.from({ length: 8 }, (_, i) => t.host.callTool("echo", "echo", { text: `${i}` })));
    expect(t.host.processCount("echo")).toBe(2);
    expect(await eventually(() => t.host.processCount("echo") === 1)).toBe(true);
  });

  test("the config refuses timeout_ms over 60000, naming the key", () => {
    using dir = tempDir();
    const file = dir.file("config.toml", '[[plugins]]\nname = "slow"\npath = "slow.wasm"\ntimeout_ms = 600000\n');
    expect(() => loadConfig({}, { file })).toThrow(/plugins\[0\]\.timeout_ms: .*60000/);
    const ok = dir.file(
      "ok.toml",
      '[[plugins]]\nname = "p"\npath = "p.wasm"\ntimeout_ms = 60000\nshared_state = true\nstate_max_entries = 5\nstate_max_bytes = 1000\n',
    );
    expect(loadConfig({}, { file: ok }).plugins[0]).toMatchObject({
      timeout_ms: 60000,
      shared_state: true,
      state_max_entries: 5,
      state_max_bytes: 1000,
    });
  });

  test("a timeout over 60 s is capped at 60 s", async () => {
    await using t = startTestHost();
    const loaded = await t.host.load(grant("echo", { timeout_ms: 600_000 }), await readWasm(pluginPath("echo")));
    expect(loaded.grant.timeout_ms).toBe(60_000);
  });
});

describe("plugin log lines", () => {
  test("ANSI, OSC title and clipboard sequences and forged newlines reach the log as visible escapes", async () => {
    await using t = startTestHost();
    await t.host.load(grant("hostile"), await readWasm(fixturePath("hostile")));
    const attack = 'ok\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\nlevel=error msg="forged"\r\x9b31m\x7f\tend';
    await t.host.callTool("hostile", "log_raw", { arg: attack });
    const line = t.logs.find((l) => l.includes('"plugin log"'))!;
    const message = (JSON.parse(line) as { message: string }).message;
    expect(message).toBe(
      'ok\\x1b]0;pwned\\x07\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J\\nlevel=error msg="forged"\\r\\x9b31m\\x7f\\tend',
    );
    expect(message).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
  });

  test("escapeControl keeps ordinary text, including non-ASCII, as it is", () => {
    expect(escapeControl("héllo ✓ 🦀 مرحبا")).toBe("héllo ✓ 🦀 مرحبا");
    expect(escapeControl("\x00\x1b\x85")).toBe("\\x00\\x1b\\x85");
  });
});

describe("files and built-ins", () => {
  test("exo_fs_write through a dangling symlink inside the grant creates nothing outside it", async () => {
    using dir = tempDir();
    using outside = tempDir();
    mkdirSync(join(dir.path, "data"));
    const target = join(outside.path, "created.txt");
    symlinkSync(target, join(dir.path, "data", "dangling"));
    symlinkSync(outside.path, join(dir.path, "data", "outdir"));
    await using t = startTestHost();
    await t.host.load(
      grant("hostile", { allowed_paths: { [join(dir.path, "data")]: "/data" } }),
      await readWasm(fixturePath("hostile")),
    );
    const write = (arg: string) => t.host.callTool("hostile", "write_file", { arg });
    for (const path of ["/data/dangling", "/data/outdir/new.txt"]) {
      const r = await write(path);
      expect(r.is_error).toBe(true);
    }
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(outside.path, "new.txt"))).toBe(false);
    expect(await write("/data/sub/ok.txt")).toEqual({ content: "written", is_error: false });
    expect(await Bun.file(join(dir.path, "data", "sub", "ok.txt")).text()).toBe("written by hostile");
  });

  test("`builtin:` names a real built-in plugin only, never a path to an unpinned file", () => {
    const entry = (path: string) => ({
      name: "x",
      path,
      allowed_hosts: [],
      allowed_paths: {},
      secrets: [],
      memory_mb: 16,
      timeout_ms: 1000,
      config: {},
    });
    for (const path of [
      "builtin:../fixtures/hostile",
      "builtin:../../dist/fixtures/hostile",
      "builtin:/etc/passwd",
      "builtin:Notes",
    ]) {
      expect(() => readPinnedModule(entry(path), "/nonexistent")).toThrow(SandboxError);
      expect(() => readPinnedModule(entry(path), "/nonexistent")).toThrow("is not a built-in plugin name");
    }
    expect(() => readPinnedModule(entry("builtin:no-such-plugin"), "/nonexistent")).toThrow(
      "no built-in plugin builtin:no-such-plugin",
    );
    expect(readPinnedModule(entry("builtin:notes"), "/nonexistent").sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
