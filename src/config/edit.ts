/**
 * Edits `[[plugins]]` entries in the config file as text, so the operator's comments and layout
 * elsewhere survive. The result is parsed and validated before it is written.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { giveToStateOwner } from "./credentials.ts";
import { dirname } from "node:path";
import { parse as parseToml } from "smol-toml";
import * as v from "valibot";
import { ConfigError } from "../lib/errors.ts";
import { ConfigSchema, type ConfigFile } from "./schema.ts";

export type PluginConfigEntry = ConfigFile["plugins"][number];

const str = (s: string) => JSON.stringify(s);
const key = (k: string) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : str(k));
const table = (o: Readonly<Record<string, string>>) =>
  `{ ${Object.entries(o)
    .map(([k, val]) => `${key(k)} = ${str(val)}`)
    .join(", ")} }`.replace("{  }", "{}");

/** The TOML text of one `[[plugins]]` entry. */
export function renderPluginEntry(p: PluginConfigEntry): string {
  const lines = [
    "[[plugins]]",
    `name = ${str(p.name)}`,
    `path = ${str(p.path)}`,
    ...(p.sha256 ? [`sha256 = ${str(p.sha256)}`] : []),
    `allowed_hosts = [${p.allowed_hosts.map(str).join(", ")}]`,
    `allowed_paths = ${table(p.allowed_paths)}`,
    `secrets = [${p.secrets.map(str).join(", ")}]`,
    ...(p.secret_hosts && Object.keys(p.secret_hosts).length > 0
      ? [
          `secret_hosts = { ${Object.entries(p.secret_hosts)
            .map(([k, hosts]) => `${k} = [${hosts.map(str).join(", ")}]`)
            .join(", ")} }`,
        ]
      : []),
    ...(p.shared_state ? ["shared_state = true"] : []),
    ...(p.state_max_entries !== undefined ? [`state_max_entries = ${p.state_max_entries}`] : []),
    ...(p.state_max_bytes !== undefined ? [`state_max_bytes = ${p.state_max_bytes}`] : []),
    `memory_mb = ${p.memory_mb}`,
    `timeout_ms = ${p.timeout_ms}`,
    `config = ${table(p.config)}`,
  ];
  return lines.join("\n") + "\n";
}

const HEADER = /^\s*\[/;

/** Line ranges [start, end) of each `[[plugins]]` block, with the entry's name when found. */
function pluginBlocks(lines: string[]): { start: number; end: number; name: string | null }[] {
  const blocks: { start: number; end: number; name: string | null }[] = [];
  let current: { start: number; end: number; name: string | null } | null = null;
  lines.forEach((line, i) => {
    if (HEADER.test(line)) {
      // `[plugins.config]` style sub-tables belong to the block above them.
      if (current && /^\s*\[\s*plugins\./.test(line)) return;
      if (current) (current.end = i), blocks.push(current);
      current = /^\s*\[\[\s*plugins\s*\]\]/.test(line) ? { start: i, end: lines.length, name: null } : null;
      return;
    }
    const m = current && current.name === null ? /^\s*name\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(line) : null;
    if (current && m) current.name = JSON.parse(`"${m[1]}"`) as string;
  });
  if (current) blocks.push(current);
  return blocks;
}

function validate(text: string, file: string): void {
  const r = v.safeParse(ConfigSchema, parseToml(text));
  if (!r.success) throw new ConfigError(`${file}: the edited config would be invalid: ${r.issues[0]?.message ?? "?"}`);
}

function writeAtomically(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  giveToStateOwner(dirname(file), [tmp]);
  renameSync(tmp, file);
}

/** Adds the entry, or replaces the entry with the same name. Returns "added" or "replaced". */
export function upsertPluginEntry(file: string, entry: PluginConfigEntry): "added" | "replaced" {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const lines = text.split("\n");
  const block = pluginBlocks(lines).find((b) => b.name === entry.name);
  let out: string;
  if (block) {
    let end = block.end;
    while (end > block.start + 1 && lines[end - 1]!.trim() === "") end--;
    out = [...lines.slice(0, block.start), renderPluginEntry(entry).trimEnd(), ...lines.slice(end)].join("\n");
  } else {
    out =
      (text === "" || text.endsWith("\n\n") ? text : text.endsWith("\n") ? text + "\n" : text + "\n\n") +
      renderPluginEntry(entry);
  }
  validate(out, file);
  writeAtomically(file, out);
  return block ? "replaced" : "added";
}

/** Removes the entry named `name`; false when there was none. */
export function removePluginEntry(file: string, name: string): boolean {
  if (!existsSync(file)) return false;
  const lines = readFileSync(file, "utf8").split("\n");
  const block = pluginBlocks(lines).find((b) => b.name === name);
  if (!block) return false;
  const out = [...lines.slice(0, block.start), ...lines.slice(block.end)].join("\n").replace(/\n{3,}/g, "\n\n");
  validate(out, file);
  writeAtomically(file, out);
  return true;
}
