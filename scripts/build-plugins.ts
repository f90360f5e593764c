/**
 * Compiles the AssemblyScript plugins: `plugins/<name>/index.ts` → `dist/plugins/<name>.wasm`, and
 * the hostile test fixtures `tests/fixtures/plugins/<name>.ts` → `dist/fixtures/<name>.wasm`.
 * Skips a module whose output is newer than every source it could depend on.
 *
 *   bun scripts/build-plugins.ts [--force]
 */
import asc from "assemblyscript/asc";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const SDK = join(ROOT, "plugins/sdk");

export interface PluginSource {
  name: string;
  entry: string;
  out: string;
}

export function pluginSources(): PluginSource[] {
  const plugins = readdirSync(join(ROOT, "plugins"), { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== "sdk" && existsSync(join(ROOT, "plugins", d.name, "index.ts")))
    .map((d) => ({ name: d.name, entry: `plugins/${d.name}/index.ts`, out: `dist/plugins/${d.name}.wasm` }));
  const fixturesDir = join(ROOT, "tests/fixtures/plugins");
  const fixtures = existsSync(fixturesDir)
    ? readdirSync(fixturesDir)
        .filter((f) => f.endsWith(".ts"))
        .map((f) => ({
          name: f.slice(0, -3),
          entry: `tests/fixtures/plugins/${f}`,
          out: `dist/fixtures/${f.slice(0, -3)}.wasm`,
        }))
    : [];
  return [...plugins, ...fixtures];
}

function newestMtime(paths: string[]): number {
  return Math.max(
    ...paths.flatMap((p) =>
      statSync(p).isDirectory() ? readdirSync(p).map((f) => statSync(join(p, f)).mtimeMs) : [statSync(p).mtimeMs],
    ),
  );
}

export async function buildPlugins(opts: { force?: boolean; quiet?: boolean } = {}): Promise<string[]> {
  const built: string[] = [];
  for (const src of pluginSources()) {
    const out = join(ROOT, src.out);
    const deps = [join(ROOT, src.entry), SDK, join(ROOT, "scripts/build-plugins.ts")];
    if (!opts.force && existsSync(out) && statSync(out).mtimeMs > newestMtime(deps)) continue;
    mkdirSync(join(out, ".."), { recursive: true });
    const t0 = performance.now();
    const { error, stderr } = await asc.main(
      [
        src.entry,
        "--outFile",
        out,
        "--optimize",
        "--runtime",
        "incremental",
        "--use",
        "abort=plugins/sdk/index/abort",
        "--baseDir",
        ROOT,
      ],
      {},
    );
    if (error) throw new Error(`building ${src.entry} failed: ${error.message}\n${stderr.toString()}`);
    built.push(src.out);
    if (!opts.quiet)
      console.log(`built ${src.out} (${statSync(out).size} bytes, ${Math.round(performance.now() - t0)} ms)`);
  }
  return built;
}

if (import.meta.main) {
  await buildPlugins({ force: process.argv.includes("--force") });
}
