/**
 * `bun run build`: src/main.ts → one self-contained binary per OS in dist/, built-in plugins embedded.
 *
 *   bun build.ts                                  all five targets
 *   bun build.ts --native                         only this machine's target
 *   bun build.ts --target linux-arm64[,…] [--target …]
 *   bun build.ts --fetch-runtimes [--target …]   only fetch the runtimes into the cache (.ci/run, before npm test)
 *
 * Offline and reproducible: each target's Bun runtime is the npm package `@oven/bun-<os>-<arch>` at
 * exactly the pinned Bun version (node_modules/bun), fetched once with `npm pack` into
 * .cache/bun-runtimes/ and handed to Bun as compile.executablePath, so Bun never downloads one.
 * The host's own runtime is the npm-installed bun binary itself.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildPlugins } from "./scripts/build-plugins.ts";

export type BinaryFormat = "elf" | "macho" | "pe";
export type Arch = "x64" | "arm64";

export interface Target {
  name: string;
  /** Bun's compile target */
  bun: Bun.Build.CompileTarget;
  /** npm package holding that target's Bun runtime */
  pkg: string;
  /** file name in dist/ */
  out: string;
  format: BinaryFormat;
  arch: Arch;
}

// x64: `bun-<os>-x64` is the normal ("modern", Haswell+/AVX2) runtime, not `-baseline`; its npm
// package is @oven/bun-<os>-x64 (the baseline one would be @oven/bun-<os>-x64-baseline).
export const TARGETS: readonly Target[] = [
  {
    name: "linux-x64",
    bun: "bun-linux-x64",
    pkg: "@oven/bun-linux-x64",
    out: "exoclaw-linux-x64",
    format: "elf",
    arch: "x64",
  },
  {
    name: "linux-arm64",
    bun: "bun-linux-arm64",
    pkg: "@oven/bun-linux-aarch64",
    out: "exoclaw-linux-arm64",
    format: "elf",
    arch: "arm64",
  },
  {
    name: "darwin-x64",
    bun: "bun-darwin-x64",
    pkg: "@oven/bun-darwin-x64",
    out: "exoclaw-darwin-x64",
    format: "macho",
    arch: "x64",
  },
  {
    name: "darwin-arm64",
    bun: "bun-darwin-arm64",
    pkg: "@oven/bun-darwin-aarch64",
    out: "exoclaw-darwin-arm64",
    format: "macho",
    arch: "arm64",
  },
  {
    name: "windows-x64",
    bun: "bun-windows-x64",
    pkg: "@oven/bun-windows-x64",
    out: "exoclaw-windows-x64.exe",
    format: "pe",
    arch: "x64",
  },
];

const ROOT = import.meta.dir;
const CACHE = join(ROOT, ".cache/bun-runtimes");

export function nativeTarget(): Target | undefined {
  const os = process.platform === "win32" ? "windows" : process.platform;
  return TARGETS.find((t) => t.name === `${os}-${process.arch}`);
}

/** Executable format and CPU from the magic bytes and machine field (the first 4 KiB are plenty). */
export function detectBinaryFormat(b: Uint8Array): { format: BinaryFormat | "unknown"; arch: Arch | "unknown" } {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const arch = (v: number, x64: number, arm64: number): Arch | "unknown" =>
    v === x64 ? "x64" : v === arm64 ? "arm64" : "unknown";
  if (b.length >= 20 && view.getUint32(0, false) === 0x7f454c46) {
    return { format: "elf", arch: arch(view.getUint16(18, b[5] !== 2), 0x3e, 0xb7) }; // e_machine, EI_DATA endianness
  }
  if (b.length >= 8 && view.getUint32(0, true) === 0xfeedfacf) {
    return { format: "macho", arch: arch(view.getUint32(4, true), 0x01000007, 0x0100000c) }; // cputype
  }
  if (b.length >= 0x40 && b[0] === 0x4d && b[1] === 0x5a) {
    const pe = view.getUint32(0x3c, true); // e_lfanew
    if (pe + 6 <= b.length && view.getUint32(pe, true) === 0x00004550)
      return { format: "pe", arch: arch(view.getUint16(pe + 4, true), 0x8664, 0xaa64) };
  }
  return { format: "unknown", arch: "unknown" };
}

function head(path: string): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(4096);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** A usable runtime for `t`: a non-empty file of the target's format and CPU. */
function isRuntimeFor(path: string, t: Target): boolean {
  if (!existsSync(path) || statSync(path).size === 0) return false;
  const got = detectBinaryFormat(head(path));
  return got.format === t.format && got.arch === t.arch;
}

/** The Bun version the lockfile installed. The compiler must be that version too, or the runtime rejects its bytecode. */
export function pinnedBunVersion(): string {
  const pinned = (JSON.parse(readFileSync(join(ROOT, "node_modules/bun/package.json"), "utf8")) as { version: string })
    .version;
  if (Bun.version !== pinned)
    throw new Error(
      `running under bun ${Bun.version} but node_modules has bun ${pinned}; run node_modules/.bin/bun build.ts`,
    );
  return pinned;
}

async function sh(cmd: string[], cwd: string): Promise<string> {
  const p = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0)
    throw new Error(`\`${cmd.join(" ")}\` exited ${code}: ${(err.trim() || out.trim()).split("\n").pop()}`);
  return out;
}

/**
 * The Bun runtime for `t`: the npm-installed one when it is the host's, else an `npm pack`ed copy in
 * the cache. `offline`: never fetch — a runtime missing from the cache is an error naming the fix.
 */
export async function runtimeFor(t: Target, version: string, opts: { offline?: boolean } = {}): Promise<string> {
  const exe = t.format === "pe" ? "bun.exe" : "bun";
  const installed = [join(ROOT, "node_modules", t.pkg, "bin", exe), join(ROOT, "node_modules/bun/bin/bun.exe")];
  for (const p of installed) if (isRuntimeFor(p, t)) return p;
  const dir = join(CACHE, `${t.pkg.replace("/", "-")}-${version}`);
  const bin = join(dir, "package/bin", exe);
  if (isRuntimeFor(bin, t)) return bin;
  if (opts.offline)
    throw new Error(
      `the ${t.name} runtime (${t.pkg}@${version}) is not in .cache/bun-runtimes: run \`node_modules/.bin/bun build.ts --fetch-runtimes\` (as .ci/run does)`,
    );
  mkdirSync(CACHE, { recursive: true });
  // Unpack beside the cache and move into place, so an interrupted run never leaves a half runtime.
  const tmp = mkdtempSync(join(CACHE, ".pack-"));
  try {
    const tgz =
      (await sh(["npm", "pack", `${t.pkg}@${version}`, "--pack-destination", tmp, "--silent"], tmp))
        .trim()
        .split("\n")
        .pop() ?? "";
    await sh(["tar", "-xzf", join(tmp, tgz), "-C", tmp], tmp);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    renameSync(join(tmp, "package"), join(dir, "package"));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!isRuntimeFor(bin, t)) throw new Error(`${t.pkg}@${version} has no ${t.format} ${t.arch} ${exe} at package/bin/`);
  return bin;
}

/** Fetches the runtimes of `targets` into the cache (those not there yet); returns their paths. */
export async function fetchRuntimes(targets: readonly Target[]): Promise<string[]> {
  const version = pinnedBunVersion();
  const paths: string[] = [];
  for (const t of targets) paths.push(await runtimeFor(t, version));
  return paths;
}

/** Builds `targets` into dist/; prints one line per binary; returns their paths. `offline`: see runtimeFor. */
export async function build(targets: readonly Target[], opts: { offline?: boolean } = {}): Promise<string[]> {
  const version = pinnedBunVersion();
  await buildPlugins({ quiet: true });
  mkdirSync(join(ROOT, "dist"), { recursive: true });
  const outputs: string[] = [];
  for (const t of targets) {
    const t0 = performance.now();
    const runtime = await runtimeFor(t, version, opts);
    const outfile = join(ROOT, "dist", t.out);
    const result = await Bun.build({
      entrypoints: [join(ROOT, "src/main.ts")],
      target: "bun",
      // Bytecode halves cold start (gateway to first /health 200: ~31–39 ms vs ~56–80 ms without) for
      // ~3.2 MB; ESM is required for bytecode with top-level await. Kept for every cross target: a
      // linux-arm64 binary run under qemu loads its bytecode; darwin/windows cannot be run here.
      // --minify saves ~0.3 MB and does not change startup measurably.
      format: "esm",
      bytecode: true,
      minify: true,
      // Bun otherwise inlines the *builder's* NODE_ENV (`test` under bun test) into the binary.
      define: { "process.env.NODE_ENV": '"production"' },
      compile: {
        target: t.bun,
        executablePath: runtime,
        outfile,
        assets: [join(ROOT, "dist/plugins")], // → /$bunfs/root/plugins/<name>.wasm
        // A bunfig.toml or .env in the user's working directory must not change the gateway.
        autoloadBunfig: false,
        autoloadDotenv: false,
      },
      throw: false,
    });
    if (!result.success)
      throw new Error(`${t.name}: ${result.logs.map((l) => String(l).replace(/\s+/g, " ")).join("; ")}`);
    const got = detectBinaryFormat(head(outfile));
    if (got.format !== t.format || got.arch !== t.arch)
      throw new Error(`${t.out} came out as ${got.format} ${got.arch}`);
    const mib = (statSync(outfile).size / 2 ** 20).toFixed(1);
    console.log(`dist/${t.out.padEnd(24)} ${mib.padStart(6)} MiB  ${Math.round(performance.now() - t0)} ms`);
    outputs.push(outfile);
  }
  return outputs;
}

/** The targets the command line asks for. Throws on an unknown name or flag. */
export function selectTargets(args: string[]): readonly Target[] {
  const { values } = parseArgs({
    args,
    options: {
      native: { type: "boolean" },
      target: { type: "string", multiple: true },
      "fetch-runtimes": { type: "boolean" },
    },
  });
  if (values.native) {
    const t = nativeTarget();
    if (!t) throw new Error(`no build target for this machine (${process.platform}-${process.arch})`);
    return [t];
  }
  if (!values.target) return TARGETS;
  const names = values.target
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !TARGETS.some((t) => t.name === n));
  if (unknown.length || !names.length)
    throw new Error(`unknown target "${unknown.join(", ")}"; known: ${TARGETS.map((t) => t.name).join(", ")}`);
  return TARGETS.filter((t) => names.includes(t.name));
}

if (import.meta.main) {
  const t0 = performance.now();
  try {
    const args = process.argv.slice(2);
    if (args.includes("--fetch-runtimes")) {
      const paths = await fetchRuntimes(selectTargets(args));
      console.log(`${paths.length} runtime(s) ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      process.exit(0);
    }
    const outputs = await build(selectTargets(args));
    console.log(
      `${outputs.length} binar${outputs.length === 1 ? "y" : "ies"} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  } catch (e) {
    console.error(`build failed: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
    process.exit(1);
  }
}
