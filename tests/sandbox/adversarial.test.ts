/**
 * The sandbox promise, tested with real hostile .wasm (tests/fixtures/plugins): each attack gets a
 * clear error, and the host and the other plugins keep working.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { SandboxError } from "../../src/sandbox/errors.ts";
import type { PluginHost } from "../../src/sandbox/host.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { startOutside } from "../helpers/outside.ts";
import { fixturePath, grant, pluginPath, readWasm, startTestHost } from "../helpers/plugins.ts";
import { tempDir } from "../helpers/temp.ts";

const SECRET = "sk-live-4f9a8b7c6d5e";
const OTHER_SECRET = "sk-other-0011223344";
const secrets: Record<string, string> = { api_key: SECRET, other_key: OTHER_SECRET };
const hostile = (input: Record<string, unknown>, tool: string, host: PluginHost) =>
  host.callTool("hostile", tool, input);

async function withHostile(over: Parameters<typeof grant>[1] = {}, hostOpts: Parameters<typeof startTestHost>[0] = {}) {
  const t = startTestHost({ secret: (n) => secrets[n] ?? null, ...hostOpts });
  await t.host.load(grant("echo"), await readWasm(pluginPath("echo")));
  await t.host.load(grant("hostile", over), await readWasm(fixturePath("hostile")));
  return t;
}

/** The other plugin still answers. */
async function echoStillWorks(host: PluginHost) {
  expect(await host.callTool("echo", "echo", { text: "still here" })).toEqual({
    content: "still here",
    is_error: false,
  });
}

async function failure(p: Promise<unknown>): Promise<SandboxError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SandboxError);
  return e as SandboxError;
}

describe("files", () => {
  test("a plugin cannot read /etc/passwd or anything outside its granted paths", async () => {
    using dir = tempDir();
    dir.file("notes.txt", "granted content");
    mkdirSync(join(dir.path, "sub"));
    symlinkSync("/etc/passwd", join(dir.path, "sub", "link"));
    await using t = await withHostile({ allowed_paths: { [dir.path]: "/data" } });
    const read = (arg: string) => hostile({ arg }, "read_file", t.host);
    expect(await read("/data/notes.txt")).toEqual({ content: "granted content", is_error: false });
    for (const path of [
      "/etc/passwd",
      "/data/../etc/passwd",
      "/data/../../etc/passwd",
      "/data/sub/link",
      "data/notes.txt",
      "/datax/notes.txt",
    ]) {
      const r = await read(path);
      expect(r.is_error).toBe(true);
      expect(r.content).toContain("is not in this plugin's allowed_paths");
      expect(r.content).not.toContain("root:");
    }
    await echoStillWorks(t.host);
  });

  test("with no grant at all, no path is readable", async () => {
    await using t = await withHostile();
    const r = await hostile({ arg: "/etc/passwd" }, "read_file", t.host);
    expect(r).toEqual({ content: "denied: path /etc/passwd is not in this plugin's allowed_paths", is_error: true });
  });

  test("a plugin importing WASI is refused at load", async () => {
    await using t = startTestHost();
    const e = await failure(t.host.load(grant("wasi-reader"), await readWasm(fixturePath("wasi-reader"))));
    expect(e.message).toBe(
      "plugin wasi-reader: imports wasi_snapshot_preview1.path_open, which exoclaw does not provide (no WASI: files go through exo_fs_read, network through exo_http)",
    );
    expect(t.host.list()).toEqual([]);
  });
});

describe("network and secrets", () => {
  test("a host not on the allowlist receives zero requests", async () => {
    await using outside = startOutside();
    await using t = await withHostile({ allowed_hosts: ["api.example.com"] });
    for (const url of [
      `${outside.url}/x`,
      `http://localhost:${outside.port}/x`,
      `http://[::1]:${outside.port}/x`,
      `http://api.example.com.evil:${outside.port}/`,
    ]) {
      const r = await hostile({ arg: url }, "fetch", t.host);
      expect(r.is_error).toBe(true);
      expect(r.content).toMatch(/is not in this plugin's allowed_hosts/);
    }
    expect(outside.requests).toHaveLength(0);
    await echoStillWorks(t.host);
  });

  test("an allowed host is reachable; the port can be pinned", async () => {
    await using outside = startOutside();
    await using t = await withHostile({ allowed_hosts: [`127.0.0.1:${outside.port}`] });
    expect(await hostile({ arg: `${outside.url}/ok` }, "fetch", t.host)).toEqual({
      content: `200 {"path":"/ok","authorization":null}`,
      is_error: false,
    });
    const other = await hostile({ arg: `http://127.0.0.1:${outside.port + 1}/` }, "fetch", t.host);
    expect(other.content).toMatch(/not in this plugin's allowed_hosts/);
    expect(outside.requests).toHaveLength(1);
  });

  test("a secret not granted to the plugin is never sent", async () => {
    await using outside = startOutside();
    await using t = await withHostile({ allowed_hosts: [`127.0.0.1:${outside.port}`], secrets: ["api_key"] });
    const e = await failure(hostile({ arg: `${outside.url}/steal`, name: "other_key" }, "steal_secret", t.host));
    expect(e.message).toBe("plugin hostile failed: http error: secret other_key is not granted to this plugin");
    expect(outside.requests).toHaveLength(0);
  });

  test("a granted secret reaches the allowed host but never the caller, the error or the log", async () => {
    await using outside = startOutside();
    await using t = await withHostile({ allowed_hosts: [`127.0.0.1:${outside.port}`], secrets: ["api_key"] });
    const r = await hostile({ arg: `${outside.url}/echo`, name: "api_key" }, "steal_secret", t.host);
    // The upstream really got the secret: the host filled the placeholder.
    expect(outside.requests.at(-1)?.authorization).toBe(`Bearer ${SECRET}`);
    // What came back to the plugin (and so to the caller) was scrubbed.
    expect(r.content).not.toContain(SECRET);
    expect(r.content).toContain("Bearer ***");
    const e = await failure(
      hostile({ arg: `${outside.url}/echo`, name: "api_key", mode: "error" }, "steal_secret", t.host),
    );
    expect(e.message).not.toContain(SECRET);
    expect(e.message).toContain("leaking:");
    await hostile({ arg: `${outside.url}/echo`, name: "api_key" }, "log_secret", t.host);
    const logs = t.logs.join("\n");
    expect(logs).toContain("got ");
    expect(logs).not.toContain(SECRET);
    expect(outside.requests.every((q) => q.authorization === `Bearer ${SECRET}`)).toBe(true);
  });

  test("a response over the cap is refused", async () => {
    await using outside = startOutside();
    await using t = await withHostile({ allowed_hosts: [`127.0.0.1:${outside.port}`] });
    const r = await hostile({ arg: `${outside.url}/big` }, "fetch", t.host);
    expect(r).toEqual({ content: `error: response larger than ${1024 * 1024} bytes`, is_error: true });
  });
});

describe("runaways and bad behaviour", () => {
  test("an infinite loop is stopped at its timeout while other plugins keep answering", async () => {
    await using t = await withHostile({ timeout_ms: 800 });
    const spinning = failure(hostile({}, "spin", t.host));
    // While the loop burns one child process, the other serves the echo plugin.
    await echoStillWorks(t.host);
    const e = await spinning;
    expect(e.message).toBe("plugin hostile timed out after 800 ms and was stopped");
    await echoStillWorks(t.host);
    expect(await hostile({}, "count", t.host)).toEqual({ content: "1", is_error: false });
  });

  test("growing memory hits the cap and traps; the instance is replaced", async () => {
    await using t = await withHostile({ memory_mb: 16 });
    // Memory really grows under the cap: 8 MiB, every page touched, is fine in 16 MiB…
    expect(await t.host.callTool("hostile", "grow_then_return", { n: 8 })).toEqual({
      content: "grew 8 MiB",
      is_error: false,
    });
    // …and 32 MiB is not: the call traps at the cap.
    expect((await failure(t.host.callTool("hostile", "grow_then_return", { n: 32 }))).message).toStartWith(
      "plugin hostile trapped:",
    );
    const e = await failure(hostile({}, "grow", t.host));
    expect(e.message).toStartWith("plugin hostile trapped:");
    expect(await hostile({}, "count", t.host)).toEqual({ content: "1", is_error: false });
    // The cap, not the tool, stopped it: the same 32 MiB under a 64 MiB grant returns.
    await t.host.load(grant("roomy", { memory_mb: 64 }), await readWasm(fixturePath("hostile")));
    expect(await t.host.callTool("roomy", "grow_then_return", { n: 32 })).toEqual({
      content: "grew 32 MiB",
      is_error: false,
    });
    await echoStillWorks(t.host);
  });

  test("100 MB of output cannot be produced, and 2 MB is over the output cap", async () => {
    await using t = await withHostile({ memory_mb: 64 });
    const huge = await failure(hostile({ n: 100 * 1024 * 1024 }, "big_output", t.host));
    expect(huge.message).toStartWith("plugin hostile trapped:");
    const big = await failure(hostile({ n: 2 * 1024 * 1024 }, "big_output", t.host));
    expect(big.message).toBe(`plugin hostile: output of ${2 * 1024 * 1024} bytes exceeds the limit of ${1024 * 1024}`);
    expect(await hostile({ n: 10 }, "big_output", t.host).catch((e: Error) => e.message)).toBe(
      "plugin hostile returned invalid JSON",
    );
    await echoStillWorks(t.host);
  });

  test("invalid JSON output is a clear error", async () => {
    await using t = await withHostile();
    expect((await failure(hostile({}, "bad_json", t.host))).message).toBe("plugin hostile returned invalid JSON");
  });

  test("a trap fails that call only; state written before it persists, the instance is fresh", async () => {
    await using t = await withHostile();
    expect((await failure(hostile({}, "trap", t.host))).message).toStartWith("plugin hostile trapped:");
    expect(t.logs.join("\n")).toContain("Unreachable");
    expect(await hostile({}, "count", t.host)).toEqual({ content: "1", is_error: false });
    await echoStillWorks(t.host);
  });

  test("an input over the cap is refused before the plugin sees it", async () => {
    await using t = await withHostile({}, { maxInputBytes: 1000 });
    expect((await failure(t.host.callTool("echo", "echo", { text: "z".repeat(2000) }))).message).toMatch(
      /^input of \d+ bytes exceeds the limit of 1000$/,
    );
  });
});

/** Where the content of the module's section `id` starts (LEB128 sizes, as in the wasm binary format). */
function sectionContent(b: Uint8Array, id: number): number {
  let pos = 8;
  while (pos < b.length) {
    const sid = b[pos++];
    let size = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = b[pos++]!;
      size |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    if (sid === id) return pos;
    pos += size;
  }
  throw new Error(`no section ${id}`);
}

describe("bad modules", () => {
  test("not a wasm module, a missing export, ABI 2: each refused with a clear error", async () => {
    await using t = startTestHost();
    const text = new TextEncoder().encode("#!/bin/sh\nrm -rf /\n");
    expect((await failure(t.host.load(grant("script"), text))).message).toBe("plugin script: not a wasm module");
    expect((await failure(t.host.load(grant("no-call"), await readWasm(fixturePath("no-call"))))).message).toBe(
      "plugin no-call: a tool plugin must export call",
    );
    expect((await failure(t.host.load(grant("abi2"), await readWasm(fixturePath("abi2"))))).message).toBe(
      "plugin abi2: the plugin declares ABI 2; this exoclaw speaks ABI 1",
    );
    // Well-formed sections around code that does not compile: the gateway reads only the structure,
    // the plugin-host child's compiler refuses the code, and the load fails naming why.
    const broken = new Uint8Array(await readWasm(pluginPath("echo")));
    const code = sectionContent(broken, 10);
    broken.fill(0xfe, code + 40, code + 60);
    expect((await failure(t.host.load(grant("broken"), broken))).message).toMatch(
      /^plugin broken: failed: not a wasm module: WebAssembly\.Module doesn't parse at byte \d+/,
    );
    await t.host.load(grant("echo"), await readWasm(pluginPath("echo")));
    expect(t.host.list().map((p) => p.name)).toEqual(["echo"]);
    await echoStillWorks(t.host);
  });

  test("unknown plugins and tools are errors, not crashes", async () => {
    await using t = await withHostile();
    expect((await failure(t.host.callTool("nope", "x", {}))).message).toBe("no plugin named nope");
    expect((await failure(t.host.callTool("echo", "shout", {}))).message).toBe("plugin echo has no tool shout");
  });
});

describe("state", () => {
  test("kv state survives a restart of the host and its store", async () => {
    using dir = tempDir();
    const db = join(dir.path, "exoclaw.db");
    for (const expected of ["1", "2", "3"]) {
      const store = openSqliteStore(db);
      const t = startTestHost({
        kv: {
          get: (p, k) => store.kvGet(p, k),
          set: (p, k, v) => store.kvSet(p, k, v),
          stats: (p) => store.kvStats(p),
        },
      });
      await t.host.load(grant("hostile"), await readWasm(fixturePath("hostile")));
      expect(await t.host.callTool("hostile", "count", {})).toEqual({ content: expected, is_error: false });
      await t.host.stop();
      await store.close();
    }
  });
});

describe("floods", () => {
  test("a plugin cannot flood the host's log: at most 100 lines per call", async () => {
    await using t = await withHostile();
    const before = t.logs.length;
    expect(await hostile({ n: 5000 }, "log_flood", t.host)).toEqual({ content: "flooded", is_error: false });
    const lines = t.logs.slice(before).filter((l) => l.includes('"plugin log"'));
    expect(lines.length).toBe(101);
    expect(lines.at(-1)).toContain("more than 100 log lines in one call");
    await echoStillWorks(t.host);
  });

  test("plugin state values over 1 MiB are refused", async () => {
    await using t = await withHostile({ memory_mb: 64 });
    expect(await hostile({ n: 1000 }, "kv_big", t.host)).toEqual({ content: "stored 1000", is_error: false });
    expect(await hostile({ n: 2 * 1024 * 1024 }, "kv_big", t.host)).toEqual({
      content: "stored 1000",
      is_error: false,
    });
  });
});
