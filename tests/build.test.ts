/**
 * The release build: five binaries, each of the right format, and the native one working from an
 * unrelated directory (no source tree needed): --version, a gateway answering /health, and a
 * built-in plugin run by the binary's own plugin-host mode.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { build, detectBinaryFormat, nativeTarget, TARGETS } from "../build.ts";
import pkg from "../package.json";
import { tempDir } from "./helpers/temp.ts";

const DIST = join(import.meta.dir, "../dist");

describe("detectBinaryFormat", () => {
  const bytes = (n: number, set: [number, number[]][]) => {
    const b = new Uint8Array(n);
    for (const [at, v] of set) b.set(v, at);
    return b;
  };
  test("reads ELF, Mach-O and PE headers", () => {
    expect(detectBinaryFormat(bytes(64, [[0, [0x7f, 0x45, 0x4c, 0x46, 2, 1]], [18, [0x3e, 0]]]))).toEqual({ format: "elf", arch: "x64" });
    expect(detectBinaryFormat(bytes(64, [[0, [0x7f, 0x45, 0x4c, 0x46, 2, 1]], [18, [0xb7, 0]]]))).toEqual({ format: "elf", arch: "arm64" });
    expect(detectBinaryFormat(bytes(64, [[0, [0xcf, 0xfa, 0xed, 0xfe, 0x0c, 0, 0, 0x01]]]))).toEqual({ format: "macho", arch: "arm64" });
    expect(detectBinaryFormat(bytes(64, [[0, [0xcf, 0xfa, 0xed, 0xfe, 0x07, 0, 0, 0x01]]]))).toEqual({ format: "macho", arch: "x64" });
    expect(detectBinaryFormat(bytes(256, [[0, [0x4d, 0x5a]], [0x3c, [0x80, 0, 0, 0]], [0x80, [0x50, 0x45, 0, 0, 0x64, 0x86]]]))).toEqual({ format: "pe", arch: "x64" });
    expect(detectBinaryFormat(new TextEncoder().encode("#!/bin/sh\necho hi\n".repeat(10)))).toEqual({ format: "unknown", arch: "unknown" });
  });
});

describe("bun run build", () => {
  beforeAll(async () => {
    await build(TARGETS);
  }, 600_000);

  for (const t of TARGETS) {
    test(`${t.out} is a ${t.format} ${t.arch} executable`, () => {
      const head = new Uint8Array(readFileSync(join(DIST, t.out)).subarray(0, 4096));
      expect(detectBinaryFormat(head)).toEqual({ format: t.format, arch: t.arch });
    });
  }

  const native = nativeTarget();
  test.if(native !== undefined)("the native binary runs from another directory: --version, /health, a built-in plugin", async () => {
    const bin = join(DIST, native!.out);
    using home = tempDir();
    const env = { EXOCLAW_HOME: home.path, PATH: process.env.PATH ?? "" };
    const version = Bun.spawnSync([bin, "--version"], { cwd: home.path, env });
    expect(version.exitCode).toBe(0);
    expect(version.stdout.toString()).toBe(`${pkg.version}\n`);

    home.file("config.toml", '[[plugins]]\nname = "echo"\npath = "builtin:echo"\n');
    const call = Bun.spawnSync([bin, "plugin", "call", "echo", "echo", '{"text":"from the binary ✓"}'], { cwd: home.path, env });
    expect(call.stderr.toString()).toBe("");
    expect(call.stdout.toString()).toBe("from the binary ✓\n");

    const gw = Bun.spawn([bin, "gateway", "--port", "0"], { cwd: home.path, env, stdout: "pipe", stderr: "pipe" });
    try {
      const reader = gw.stdout.getReader();
      let buf = "";
      let port = 0;
      while (!port) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`gateway exited: ${await new Response(gw.stderr).text()}`);
        buf += new TextDecoder().decode(value);
        for (const line of buf.split("\n")) if (line.includes('"gateway listening"')) port = JSON.parse(line).port;
      }
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "ok", version: pkg.version });
    } finally {
      gw.kill("SIGTERM");
      await gw.exited;
    }
  });
});
