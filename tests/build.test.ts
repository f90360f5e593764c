/**
 * The release build (build.ts): the binary-format sniffer, target selection, and the five binaries
 * each of the right format and CPU. What the native binary does for a user (CLI, gateway, channels,
 * plugins, signals) is tested by running it, in tests/e2e/binary/.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { build, detectBinaryFormat, nativeTarget, runtimeFor, selectTargets, TARGETS } from "../build.ts";
import { NATIVE, nativeBinary } from "./helpers/binary.ts";

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
const pe = (machine: [number, number]) =>
  bytes(256, [0, [0x4d, 0x5a]], [0x3c, [0x80, 0, 0, 0]], [0x80, [0x50, 0x45, 0, 0, ...machine]]);

describe("detectBinaryFormat", () => {
  test("ELF: e_machine 0x3E is x64, 0xB7 arm64, others unknown; big-endian headers are read big-endian", () => {
    expect(detectBinaryFormat(bytes(64, [0, ELF64_LE], [18, [0x3e, 0]]))).toEqual({ format: "elf", arch: "x64" });
    expect(detectBinaryFormat(bytes(64, [0, ELF64_LE], [18, [0xb7, 0]]))).toEqual({ format: "elf", arch: "arm64" });
    expect(detectBinaryFormat(bytes(64, [0, ELF64_LE], [18, [0x28, 0]]))).toEqual({ format: "elf", arch: "unknown" });
    expect(detectBinaryFormat(bytes(64, [0, [0x7f, 0x45, 0x4c, 0x46, 2, 2]], [18, [0, 0xb7]]))).toEqual({
      format: "elf",
      arch: "arm64",
    });
  });

  test("Mach-O 64 (0xFEEDFACF little-endian): cputype 0x01000007 is x64, 0x0100000C arm64", () => {
    expect(detectBinaryFormat(bytes(32, [0, [...MACHO64_LE, 0x07, 0, 0, 0x01]]))).toEqual({
      format: "macho",
      arch: "x64",
    });
    expect(detectBinaryFormat(bytes(32, [0, [...MACHO64_LE, 0x0c, 0, 0, 0x01]]))).toEqual({
      format: "macho",
      arch: "arm64",
    });
    expect(detectBinaryFormat(bytes(32, [0, [...MACHO64_LE, 0x12, 0, 0, 0]]))).toEqual({
      format: "macho",
      arch: "unknown",
    });
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
    expect(selectTargets(["--target", "windows-x64,linux-arm64", "--target", "darwin-x64"]).map((t) => t.name)).toEqual(
      ["linux-arm64", "darwin-x64", "windows-x64"],
    );
    if (nativeTarget()) expect(selectTargets(["--native"])).toEqual([nativeTarget()!]);
    expect(() => selectTargets(["--target", "linux-riscv"])).toThrow(/unknown target "linux-riscv"/);
    expect(() => selectTargets(["--bogus"])).toThrow();
    for (const t of TARGETS) expect(t.pkg).toMatch(/^@oven\/bun-(linux|darwin|windows)-(x64|aarch64)$/);
  });
});

test("offline, a runtime missing from the cache is an error naming the command that fetches it", async () => {
  const other = TARGETS.find((t) => t !== NATIVE)!;
  await expect(runtimeFor(other, "0.0.0-not-cached", { offline: true })).rejects.toThrow(
    /is not in \.cache\/bun-runtimes: run `node_modules\/\.bin\/bun build\.ts --fetch-runtimes`/,
  );
});

describe("bun run build", () => {
  beforeAll(async () => {
    // The native one through the shared helper, so the binary suite does not build it again.
    await nativeBinary();
    // The cross targets' runtimes come from the cache: .ci/run fetches them before npm test (and sets
    // EXOCLAW_BUILD_OFFLINE=1), so a slow registry fails the install, never this test. Without it (a
    // developer's first run) they are fetched here once.
    await build(
      TARGETS.filter((t) => t !== NATIVE),
      { offline: process.env.EXOCLAW_BUILD_OFFLINE === "1" },
    );
  }, 240_000); // a first run without the cache npm-packs four ~40–55 MB runtimes; later runs take seconds

  for (const t of TARGETS) {
    test(`dist/${t.out} is a ${t.format} ${t.arch} executable`, () => {
      const path = join(DIST, t.out);
      expect(existsSync(path)).toBe(true);
      expect(detectBinaryFormat(head(path))).toEqual({ format: t.format, arch: t.arch });
    });
  }
});
