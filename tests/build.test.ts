/**
 * The release build (build.ts): the binary-format sniffer, the five binaries each of the right format
 * and CPU, and the native one working from an unrelated directory with no source tree: --version, a
 * gateway answering /health, and a built-in plugin run by the binary's own plugin-host mode.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { startFakeUpstream, sse } from "./helpers/fake-upstream.ts";
import { build, detectBinaryFormat, nativeTarget, selectTargets, TARGETS } from "../build.ts";
import pkg from "../package.json";
import { tempDir } from "./helpers/temp.ts";

const DIST = join(import.meta.dir, "../dist");

function head(path: string): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(4096);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** `n` zero bytes with `set` patched in: [offset, bytes]. */
function bytes(n: number, ...set: [number, number[]][]): Uint8Array {
  const b = new Uint8Array(n);
  for (const [at, v] of set) b.set(v, at);
  return b;
}

const ELF64_LE = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1];
const MACHO64_LE = [0xcf, 0xfa, 0xed, 0xfe];
/** A PE image: "MZ", e_lfanew = 0x80, "PE\0\0" and the machine field there. */
const pe = (machine: [number, number]) => bytes(256, [0, [0x4d, 0x5a]], [0x3c, [0x80, 0, 0, 0]], [0x80, [0x50, 0x45, 0, 0, ...machine]]);

describe("detectBinaryFormat", () => {
  test("ELF: e_machine 0x3E is x64, 0xB7 arm64, others unknown; big-endian headers are read big-endian", () => {
    expect(detectBinaryFormat(bytes(64, [0, ELF64_LE], [18, [0x3e, 0]]))).toEqual({ format: "elf", arch: "x64" });
    expect(detectBinaryFormat(bytes(64, [0, ELF64_LE], [18, [0xb7, 0]]))).toEqual({ format: "elf", arch: "arm64" });
    expect(detectBinaryFormat(bytes(64, [0, ELF64_LE], [18, [0x28, 0]]))).toEqual({ format: "elf", arch: "unknown" });
    expect(detectBinaryFormat(bytes(64, [0, [0x7f, 0x45, 0x4c, 0x46, 2, 2]], [18, [0, 0xb7]]))).toEqual({ format: "elf", arch: "arm64" });
  });

  test("Mach-O 64 (0xFEEDFACF little-endian): cputype 0x01000007 is x64, 0x0100000C arm64", () => {
    expect(detectBinaryFormat(bytes(32, [0, [...MACHO64_LE, 0x07, 0, 0, 0x01]]))).toEqual({ format: "macho", arch: "x64" });
    expect(detectBinaryFormat(bytes(32, [0, [...MACHO64_LE, 0x0c, 0, 0, 0x01]]))).toEqual({ format: "macho", arch: "arm64" });
    expect(detectBinaryFormat(bytes(32, [0, [...MACHO64_LE, 0x12, 0, 0, 0]]))).toEqual({ format: "macho", arch: "unknown" });
  });

  test("PE: MZ, e_lfanew, PE\\0\\0, machine 0x8664 is x64, 0xAA64 arm64", () => {
    expect(detectBinaryFormat(pe([0x64, 0x86]))).toEqual({ format: "pe", arch: "x64" });
    expect(detectBinaryFormat(pe([0x64, 0xaa]))).toEqual({ format: "pe", arch: "arm64" });
    expect(detectBinaryFormat(pe([0x4c, 0x01]))).toEqual({ format: "pe", arch: "unknown" });
  });

  test("anything else is unknown: garbage, empty, truncated, 32-bit Mach-O, MZ without a PE header", () => {
    const unknown = { format: "unknown", arch: "unknown" } as const;
    expect(detectBinaryFormat(new TextEncoder().encode("#!/bin/sh\necho hi\n".repeat(10)))).toEqual(unknown);
    expect(detectBinaryFormat(new Uint8Array(0))).toEqual(unknown);
    expect(detectBinaryFormat(new Uint8Array([0x7f, 0x45, 0x4c, 0x46]))).toEqual(unknown);
    expect(detectBinaryFormat(bytes(32, [0, [0xce, 0xfa, 0xed, 0xfe, 0x07, 0, 0, 0]]))).toEqual(unknown);
    expect(detectBinaryFormat(bytes(256, [0, [0x4d, 0x5a]], [0x3c, [0x80, 0, 0, 0]]))).toEqual(unknown);
    expect(detectBinaryFormat(bytes(64, [0, [0x4d, 0x5a]], [0x3c, [0xff, 0xff, 0, 0]]))).toEqual(unknown); // e_lfanew past the end
    expect(detectBinaryFormat(new Uint8Array(4096).fill(0xa5))).toEqual(unknown);
  });
});

describe("target selection", () => {
  test("all five by default; --target repeatable or comma-separated; --native is this machine; unknown names refused", () => {
    expect(selectTargets([]).map((t) => t.out)).toEqual([
      "exoclaw-linux-x64",
      "exoclaw-linux-arm64",
      "exoclaw-darwin-x64",
      "exoclaw-darwin-arm64",
      "exoclaw-windows-x64.exe",
    ]);
    expect(selectTargets(["--target", "windows-x64,linux-arm64", "--target", "darwin-x64"]).map((t) => t.name)).toEqual(["linux-arm64", "darwin-x64", "windows-x64"]);
    if (nativeTarget()) expect(selectTargets(["--native"])).toEqual([nativeTarget()!]);
    expect(() => selectTargets(["--target", "linux-riscv"])).toThrow(/unknown target "linux-riscv"/);
    expect(() => selectTargets(["--bogus"])).toThrow();
    for (const t of TARGETS) expect(t.pkg).toMatch(/^@oven\/bun-(linux|darwin|windows)-(x64|aarch64)$/);
  });
});

describe("bun run build", () => {
  beforeAll(async () => {
    await build(TARGETS);
  }, 240_000); // the first run npm-packs four ~40–55 MB runtimes; later runs take seconds

  for (const t of TARGETS) {
    test(`dist/${t.out} is a ${t.format} ${t.arch} executable`, () => {
      const path = join(DIST, t.out);
      expect(existsSync(path)).toBe(true);
      expect(detectBinaryFormat(head(path))).toEqual({ format: t.format, arch: t.arch });
    });
  }

  // The host's own binary (dist/exoclaw-linux-x64 on linux-x64, so these always run there); skipped
  // only on a host that is none of the five targets.
  const native = nativeTarget();
  const bin = join(DIST, native?.out ?? "none");
  const home = tempDir();
  // A bare environment and an unrelated cwd: nothing from the source tree or the user's home.
  const env = { EXOCLAW_HOME: home.path, HOME: home.path, PATH: process.env.PATH ?? "" };
  let gateway: Subprocess<"ignore", "pipe", "pipe"> | undefined;

  afterAll(async () => {
    if (gateway && gateway.exitCode === null) gateway.kill("SIGKILL");
    await gateway?.exited;
    home[Symbol.dispose]();
  });

  test.if(native !== undefined)("the native binary prints the package version", () => {
    const r = Bun.spawnSync([bin, "--version"], { cwd: home.path, env });
    expect({ exitCode: r.exitCode, stdout: r.stdout.toString().trim(), stderr: r.stderr.toString() }).toEqual({ exitCode: 0, stdout: pkg.version, stderr: "" });
  });

  test.if(native !== undefined)("the native binary runs a gateway whose /health answers ok with the package version", async () => {
    const gw = Bun.spawn([bin, "gateway", "--port", "0"], { cwd: home.path, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    gateway = gw;
    try {
      const listening = await logLine(gw, (l) => l.msg === "gateway listening", 15_000);
      expect(typeof listening.port).toBe("number");
      expect(listening.port).toBeGreaterThan(0);
      expect(typeof listening.url).toBe("string");
      expect(String(listening.url)).toEndWith(`:${listening.port}`);
      const res = await fetch(`http://127.0.0.1:${listening.port}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: "ok", version: pkg.version });
    } finally {
      gw.kill("SIGTERM");
      const timer = setTimeout(() => gw.kill("SIGKILL"), 5_000);
      await gw.exited;
      clearTimeout(timer);
    }
  });

  const CHANNEL_TOKEN = "binary-channel-token";
  /** The binary's gateway with one agent on the fake upstream at `upstream` and the http channel. */
  const channelGateway = (dir: ReturnType<typeof tempDir>, upstream: string) => {
    dir.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "${upstream}"\napi_key = "sk-ant-binary-test"\n\n[channels.http]\n`,
    );
    return Bun.spawn([bin, "gateway", "--port", "0"], {
      cwd: dir.path,
      env: { ...env, EXOCLAW_HOME: dir.path, HOME: dir.path, EXOCLAW_TOKEN: CHANNEL_TOKEN },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
  };

  test.if(native !== undefined)("the native binary answers a message on the built-in http channel (builtin:http, not http-get)", async () => {
    await using up = startFakeUpstream([{ body: anthropicReply("hello from the binary") }]);
    using chHome = tempDir();
    const gw = channelGateway(chHome, up.url);
    try {
      const listening = await logLine(gw, (l) => l.msg === "gateway listening", 15_000);
      const res = await fetch(`http://127.0.0.1:${listening.port}/webhook/http`, {
        method: "POST",
        headers: { authorization: `Bearer ${CHANNEL_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ peer: "alice", text: "hi" }),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ replies: [{ peer: "alice", text: "hello from the binary", stop_reason: "end_turn" }] });
      expect(up.requests).toHaveLength(1);
    } finally {
      gw.kill("SIGKILL");
      await gw.exited;
    }
  });

  test.if(native !== undefined)("SIGTERM during a webhook turn: the turn finishes and is answered, the binary exits 0", async () => {
    // The model streams slowly: SIGTERM (what systemd sends) lands while the turn runs.
    await using up = startFakeUpstream([{ body: anthropicReply("answered before shutdown"), delayMs: 25 }]);
    using chHome = tempDir();
    const gw = channelGateway(chHome, up.url);
    try {
      const listening = await logLine(gw, (l) => l.msg === "gateway listening", 15_000);
      const answer = fetch(`http://127.0.0.1:${listening.port}/webhook/http`, {
        method: "POST",
        headers: { authorization: `Bearer ${CHANNEL_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ peer: "bob", text: "hi" }),
      });
      for (let i = 0; i < 500 && up.requests.length === 0; i++) await Bun.sleep(10);
      expect(up.requests).toHaveLength(1);
      gw.kill("SIGTERM");
      const res = await answer;
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ replies: [{ peer: "bob", text: "answered before shutdown", stop_reason: "end_turn" }] });
      expect(await gw.exited).toBe(0);
      const stderr = await new Response(gw.stderr).text();
      expect(stderr).not.toContain("Database has closed");
      expect(stderr).toBe("");
    } finally {
      if (gw.exitCode === null) gw.kill("SIGKILL");
      await gw.exited;
    }
  });

  test.if(native !== undefined)("the native binary runs a built-in plugin embedded in it", () => {
    home.file("config.toml", '[[plugins]]\nname = "echo"\npath = "builtin:echo"\n');
    const call = Bun.spawnSync([bin, "plugin", "call", "echo", "echo", '{"text":"from the binary ✓"}'], { cwd: home.path, env });
    expect(call.stderr.toString()).toBe("");
    expect(call.stdout.toString()).toBe("from the binary ✓\n");
  });
});

/** One streamed Anthropic answer, as the Messages API sends it. */
const anthropicReply = (text: string) =>
  sse(
    [
      { type: "message_start", message: { id: "m", type: "message", role: "assistant", model: "claude", content: [], stop_reason: null, usage: { input_tokens: 5, output_tokens: 1 } } },
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } },
      { type: "content_block_stop", index: 0 },
      { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 3 } },
      { type: "message_stop" },
    ],
    { named: true },
  );

type LogLine = Record<string, unknown> & { port?: unknown; url?: unknown };

/** Reads the process's stdout until a JSON log line matches; fails if it exits or `ms` pass first. */
async function logLine(p: Subprocess<"ignore", "pipe", "pipe">, match: (l: LogLine) => boolean, ms: number): Promise<LogLine> {
  const reader = p.stdout.getReader();
  const decoder = new TextDecoder();
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no matching log line within ${ms} ms`)), ms);
  });
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error(`exited (${await p.exited}) before the log line: ${await new Response(p.stderr).text()}`);
      buf += decoder.decode(value, { stream: true });
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const line of lines) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          continue;
        }
        if (parsed && typeof parsed === "object" && match(parsed as LogLine)) return parsed as LogLine;
      }
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock(); // rejects a read still pending after a timeout; the process is killed next
  }
}
