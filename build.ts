/**
 * `bun run build`: one self-contained binary per OS in dist/, with the built-in plugins embedded.
 *
 *   bun build.ts                      all five targets
 *   bun build.ts --native             only this machine's target
 *   bun build.ts --target linux-arm64 [--target …]
 *
 * Offline and reproducible: the Bun runtime of each target comes from the npm registry
 * (`@oven/bun-<target>` at exactly the installed Bun version, fetched with `npm pack` into
 * .cache/bun-runtimes/) and is passed with --compile-executable-path, so Bun never downloads one.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildPlugins } from "./scripts/build-plugins.ts";

export interface Target {
  name: string;
  /** bun build --target */
  bun: string;
  /** npm package with that target's Bun runtime (the normal, non-baseline build) */
  pkg: string;
  out: string;
  format: "elf" | "macho" | "pe";
  arch: "x64" | "arm64";
}

export const TARGETS: readonly Target[] = [
  { name: "linux-x64", bun: "bun-linux-x64", pkg: "@oven/bun-linux-x64", out: "exoclaw-linux-x64", format: "elf", arch: "x64" },
  { name: "linux-arm64", bun: "bun-linux-arm64", pkg: "@oven/bun-linux-aarch64", out: "exoclaw-linux-arm64", format: "elf", arch: "arm64" },
  { name: "darwin-x64", bun: "bun-darwin-x64", pkg: "@oven/bun-darwin-x64", out: "exoclaw-darwin-x64", format: "macho", arch: "x64" },
  { name: "darwin-arm64", bun: "bun-darwin-arm64", pkg: "@oven/bun-darwin-aarch64", out: "exoclaw-darwin-arm64", format: "macho", arch: "arm64" },
  { name: "windows-x64", bun: "bun-windows-x64", pkg: "@oven/bun-windows-x64", out: "exoclaw-windows-x64.exe", format: "pe", arch: "x64" },
];

const ROOT = import.meta.dir;
const CACHE = join(ROOT, ".cache/bun-runtimes");

export function nativeTarget(): Target | undefined {
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const os = process.platform === "win32" ? "windows" : process.platform;
  return TARGETS.find((t) => t.name === `${os}-${arch}`);
}

/** Magic bytes and machine fields of an executable. */
export function detectBinaryFormat(b: Uint8Array): { format: "elf" | "macho" | "pe" | "unknown"; arch: "x64" | "arm64" | "unknown" } {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length >= 20 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46) {
    const machine = view.getUint16(18, b[5] !== 2);
    return { format: "elf", arch: machine === 0x3e ? "x64" : machine === 0xb7 ? "arm64" : "unknown" };
  }
  if (b.length >= 8 && view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true);
    return { format: "macho", arch: cpu === 0x01000007 ? "x64" : cpu === 0x0100000c ? "arm64" : "unknown" };
  }
  if (b.length >= 0x40 && b[0] === 0x4d && b[1] === 0x5a) {
    const pe = view.getUint32(0x3c, true);
    if (pe + 6 <= b.length && view.getUint32(pe, true) === 0x00004550) {
      const machine = view.getUint16(pe + 4, true);
      return { format: "pe", arch: machine === 0x8664 ? "x64" : machine === 0xaa64 ? "arm64" : "unknown" };
    }
  }
  return { format: "unknown", arch: "unknown" };
}

async function sh(cmd: string[], cwd = ROOT): Promise<string> {
  const p = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed (${code}): ${err.trim() || out.trim()}`);
  return out;
}

/** The Bun runtime for a target: the installed one for this machine, else an npm-packed copy. */
async function runtimeFor(t: Target): Promise<string> {
  const exe = t.format === "pe" ? "bun.exe" : "bun";
  const installed = join(ROOT, "node_modules", t.pkg, "bin", exe);
  if (existsSync(installed) && statSync(installed).size > 0) return installed;
  const dir = join(CACHE, `${t.pkg.replace("/", "-")}-${Bun.version}`);
  const bin = join(dir, "package", "bin", exe);
  if (existsSync(bin) && statSync(bin).size > 0) return bin;
  mkdirSync(dir, { recursive: true });
  const tgz = (await sh(["npm", "pack", `${t.pkg}@${Bun.version}`, "--pack-destination", dir, "--silent"])).trim().split("\n").pop()!;
  await sh(["tar", "-xzf", join(dir, tgz), "-C", dir]);
  if (!existsSync(bin)) throw new Error(`${t.pkg}@${Bun.version} has no ${exe} where expected`);
  return bin;
}

export async function build(targets: readonly Target[]): Promise<string[]> {
  await buildPlugins({ quiet: true });
  mkdirSync(join(ROOT, "dist"), { recursive: true });
  const outputs: string[] = [];
  for (const t of targets) {
    const t0 = performance.now();
    const runtime = await runtimeFor(t);
    const outfile = join(ROOT, "dist", t.out);
    await sh([
      process.execPath,
      "build",
      "--compile",
      "--minify",
      // Bytecode and ESM cut cold start roughly in half (reference/stack-findings.md §2).
      "--bytecode",
      "--format=esm",
      // A user's bunfig.toml or .env in the working directory must not change the gateway.
      "--no-compile-autoload-bunfig",
      "--no-compile-autoload-dotenv",
      `--target=${t.bun}`,
      `--compile-executable-path=${runtime}`,
      "--asset=dist/plugins",
      "src/main.ts",
      "--outfile",
      outfile,
    ]);
    const size = statSync(outfile).size;
    console.log(`${t.out}  ${(size / 1048576).toFixed(1)} MiB  ${Math.round(performance.now() - t0)} ms`);
    outputs.push(outfile);
  }
  return outputs;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { native: { type: "boolean" }, target: { type: "string", multiple: true } } });
  let targets: readonly Target[] = TARGETS;
  if (values.native) {
    const t = nativeTarget();
    if (!t) throw new Error(`no build target for ${process.platform}-${process.arch}`);
    targets = [t];
  } else if (values.target) {
    const names = values.target.flatMap((s) => s.split(","));
    const unknown = names.filter((n) => !TARGETS.some((t) => t.name === n));
    if (unknown.length) {
      console.error(`build: unknown target ${unknown.join(", ")}; known: ${TARGETS.map((t) => t.name).join(", ")}`);
      process.exit(2);
    }
    targets = TARGETS.filter((t) => names.includes(t.name));
  }
  try {
    await build(targets);
  } catch (e) {
    console.error(`build: ${(e as Error).message}`);
    process.exit(1);
  }
}
