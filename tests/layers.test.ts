/**
 * Dependencies point one way (STYLE.md): core (the message model and the address), lib, protocol, config → store, bus, auth → sandbox, agent,
 * channels, router, metering, memory → gateway → app.ts, cli, main.ts. This scans every import in
 * src/ and fails on an upward arrow, so a layering slip is caught at review time.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = join(import.meta.dir, "../src");
const RANK: Record<string, number> = {
  core: 0,
  lib: 0,
  protocol: 1,
  config: 1,
  store: 2,
  bus: 2,
  auth: 2,
  sandbox: 3,
  agent: 3,
  channels: 3,
  router: 3,
  metering: 3,
  memory: 3,
  mcp: 3,
  approvals: 3,
  cluster: 3,
  gateway: 4,
  "app.ts": 5,
  cli: 5,
  "main.ts": 6,
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

const layerOf = (file: string) => relative(SRC, file).split("/")[0]!;

/** Upward imports, and sideways ones except between rank-3 capabilities through their index.ts. */
export function violations(): string[] {
  const out: string[] = [];
  for (const file of files(SRC)) {
    const from = layerOf(file);
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.[^"']+)["']/g)) {
      const target = resolve(dirname(file), m[1]!);
      if (!target.startsWith(SRC)) continue;
      const to = layerOf(target);
      if (to === from) continue;
      const a = RANK[from];
      const b = RANK[to];
      if (a === undefined || b === undefined)
        out.push(`${relative(SRC, file)}: unknown layer ${a === undefined ? from : to}`);
      else if (b > a || (b === a && !(a === 3 && target.endsWith("/index.ts")) && a < 5))
        out.push(`${relative(SRC, file)} imports ${relative(SRC, target)} (${from} → ${to})`);
    }
  }
  return out;
}

describe("layering", () => {
  test("no module imports a higher layer or a sibling of its own layer", () => {
    expect(violations()).toEqual([]);
  });
  test("every top-level folder of src/ has a known layer", () => {
    for (const e of readdirSync(SRC)) expect(Object.keys(RANK)).toContain(e);
  });
});
