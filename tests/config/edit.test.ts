import { describe, expect, test } from "bun:test";
import { loadConfig, removePluginEntry, upsertPluginEntry, type PluginConfigEntry } from "../../src/config/index.ts";
import { tempDir } from "../helpers/temp.ts";

const entry = (name: string, over: Partial<PluginConfigEntry> = {}): PluginConfigEntry => ({
  name,
  path: `plugins/${name}.wasm`,
  sha256: "a".repeat(64),
  allowed_hosts: ["api.example.com"],
  allowed_paths: {},
  secrets: [],
  memory_mb: 32,
  timeout_ms: 5000,
  config: {},
  ...over,
});

describe("editing [[plugins]] entries", () => {
  test("adds, replaces and removes entries while keeping comments and other sections", async () => {
    using dir = tempDir();
    const original = '# my gateway\n[gateway]\nport = 7300 # custom port\n\n[[agents]]\nid = "main"\n';
    const file = dir.file("config.toml", original);
    expect(upsertPluginEntry(file, entry("weather"))).toBe("added");
    expect(
      upsertPluginEntry(
        file,
        entry("notes", {
          allowed_paths: { "/srv/notes": "/data" },
          config: { unit: "metric", "a b": "c" },
          secrets: ["notes_key"],
        }),
      ),
    ).toBe("added");
    expect(
      upsertPluginEntry(file, entry("weather", { allowed_hosts: ["api.open-meteo.com"], sha256: "b".repeat(64) })),
    ).toBe("replaced");
    let text = await Bun.file(file).text();
    expect(text).toStartWith(original);
    expect(text).toContain("# custom port");
    const c = loadConfig({}, { file });
    expect(c.gateway.port).toBe(7300);
    expect(c.plugins.map((p) => [p.name, p.allowed_hosts, p.sha256?.[0]])).toEqual([
      ["weather", ["api.open-meteo.com"], "b"],
      ["notes", ["api.example.com"], "a"],
    ]);
    expect(c.plugins[1]).toMatchObject({
      allowed_paths: { "/srv/notes": "/data" },
      config: { unit: "metric", "a b": "c" },
      secrets: ["notes_key"],
    });
    expect(removePluginEntry(file, "weather")).toBe(true);
    expect(removePluginEntry(file, "weather")).toBe(false);
    text = await Bun.file(file).text();
    expect(text).toContain("# my gateway");
    expect(loadConfig({}, { file }).plugins.map((p) => p.name)).toEqual(["notes"]);
  });

  test("secret bindings, shared state and state quotas survive a write", () => {
    using dir = tempDir();
    const file = dir.file("config.toml", "");
    const grants = {
      secrets: ["api_key", "other"],
      secret_hosts: { api_key: ["api.example.com", "https://eu.example.com"] },
      shared_state: true,
      state_max_entries: 50,
      state_max_bytes: 4096,
    };
    upsertPluginEntry(file, entry("bound", grants));
    expect(loadConfig({}, { file }).plugins[0]).toMatchObject(grants);
  });

  test("creates the file when there is none", () => {
    using dir = tempDir();
    const file = `${dir.path}/new/config.toml`;
    upsertPluginEntry(file, entry("x"));
    expect(loadConfig({}, { file }).plugins[0]?.name).toBe("x");
  });

  test("a hand-written entry with a sub-table is replaced whole", () => {
    using dir = tempDir();
    const file = dir.file(
      "config.toml",
      '[[plugins]]\nname = "w"\npath = "w.wasm"\n[plugins.config]\nunit = "c"\n\n[memory]\nepisodic_turns = 5\n',
    );
    upsertPluginEntry(file, entry("w"));
    const c = loadConfig({}, { file });
    expect(c.plugins).toHaveLength(1);
    expect(c.plugins[0]!.config).toEqual({});
    expect(c.memory.episodic_turns).toBe(5);
  });
});
