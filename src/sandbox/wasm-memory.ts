/**
 * Linear-memory limits of a wasm module, read and rewritten in the binary itself. Extism's
 * `maxPages` does not cap linear memory under Bun (reference/stack-findings.md §1c), so the host
 * caps it here, at load time, whatever the plugin was compiled with: the module's own memory
 * gets a declared maximum no larger than the operator's grant, and the engine then refuses to grow
 * past it (memory.grow returns -1; AssemblyScript traps with out-of-memory).
 */
import { SandboxError } from "./errors.ts";

export const PAGE_BYTES = 65536;

export interface MemoryLimits {
  min: number;
  max: number | null;
}

interface Cursor {
  pos: number;
}

function readU32(bytes: Uint8Array, c: Cursor): number {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    const b = bytes[c.pos++];
    if (b === undefined) throw new SandboxError("not a wasm module: truncated LEB128");
    result |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return result >>> 0;
    shift += 7;
  }
  throw new SandboxError("not a wasm module: LEB128 too long");
}

function writeU32(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function skipName(bytes: Uint8Array, c: Cursor): void {
  const len = readU32(bytes, c);
  c.pos += len;
}

function readLimits(bytes: Uint8Array, c: Cursor): MemoryLimits & { flags: number } {
  const flags = bytes[c.pos++]!;
  if (flags & 0x04) throw new SandboxError("64-bit memories are not supported");
  if (flags & 0x02) throw new SandboxError("shared memories are not supported");
  const min = readU32(bytes, c);
  const max = flags & 0x01 ? readU32(bytes, c) : null;
  return { flags, min, max };
}

interface Section {
  id: number;
  start: number; // first byte of the section id
  contentStart: number;
  end: number;
}

function sections(bytes: Uint8Array): Section[] {
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  if (bytes.length < 8 || magic.some((b, i) => bytes[i] !== b))
    throw new SandboxError("not a wasm module (bad magic or version)");
  const out: Section[] = [];
  const c = { pos: 8 };
  while (c.pos < bytes.length) {
    const start = c.pos;
    const id = bytes[c.pos++]!;
    const size = readU32(bytes, c);
    const contentStart = c.pos;
    c.pos += size;
    if (c.pos > bytes.length) throw new SandboxError("not a wasm module: section runs past the end");
    out.push({ id, start, contentStart, end: c.pos });
  }
  return out;
}

/** Reads the module's own memory limits; throws SandboxError for imported, multiple or 64-bit memories. */
export function readMemoryLimits(bytes: Uint8Array): MemoryLimits | null {
  const secs = sections(bytes);
  const imports = secs.find((s) => s.id === 2);
  if (imports) {
    const c = { pos: imports.contentStart };
    const n = readU32(bytes, c);
    for (let i = 0; i < n; i++) {
      skipName(bytes, c);
      skipName(bytes, c);
      const kind = bytes[c.pos++]!;
      if (kind === 0x00) readU32(bytes, c);
      else if (kind === 0x01) c.pos++, readLimits(bytes, c);
      else if (kind === 0x02) throw new SandboxError("the module imports its memory; a plugin must define its own");
      else if (kind === 0x03) c.pos += 2;
      else if (kind === 0x04) c.pos++, readU32(bytes, c);
      else throw new SandboxError(`not a wasm module: unknown import kind ${kind}`);
    }
  }
  const mem = secs.find((s) => s.id === 5);
  if (!mem) return null;
  const c = { pos: mem.contentStart };
  const count = readU32(bytes, c);
  if (count === 0) return null;
  if (count > 1) throw new SandboxError("the module declares several memories; one is supported");
  const { min, max } = readLimits(bytes, c);
  return { min, max };
}

/**
 * Returns a copy of the module whose memory maximum is at most `maxPages`. Throws SandboxError
 * when the module needs more than that at start (its minimum exceeds the grant).
 */
export function capMemory(bytes: Uint8Array, maxPages: number): { bytes: Uint8Array; limits: MemoryLimits | null } {
  const limits = readMemoryLimits(bytes);
  if (!limits) return { bytes, limits };
  if (limits.min > maxPages) {
    throw new SandboxError(
      `the module needs ${limits.min * 64} KiB of memory at start, more than its grant of ${maxPages * 64} KiB (memory_mb)`,
    );
  }
  if (limits.max !== null && limits.max <= maxPages) return { bytes, limits };
  const mem = sections(bytes).find((s) => s.id === 5)!;
  const content = [...writeU32(1), 0x01, ...writeU32(limits.min), ...writeU32(maxPages)];
  const section = [5, ...writeU32(content.length), ...content];
  const out = new Uint8Array(bytes.length - (mem.end - mem.start) + section.length);
  out.set(bytes.subarray(0, mem.start), 0);
  out.set(section, mem.start);
  out.set(bytes.subarray(mem.end), mem.start + section.length);
  return { bytes: out, limits: { min: limits.min, max: maxPages } };
}

/**
 * The module's imports (module and field names) and export names, in section order, read from the
 * binary: the same lists `WebAssembly.Module.imports/exports` give, without compiling the module in
 * the gateway (the plugin-host child compiles it; compiling here too cost the gateway ~4 MiB RSS).
 */
export function readInterface(bytes: Uint8Array): { imports: { module: string; name: string }[]; exports: string[] } {
  const text = new TextDecoder("utf-8", { fatal: true });
  const name = (c: Cursor): string => {
    const len = readU32(bytes, c);
    if (c.pos + len > bytes.length) throw new SandboxError("not a wasm module: name runs past the end");
    const s = text.decode(bytes.subarray(c.pos, c.pos + len));
    c.pos += len;
    return s;
  };
  const secs = sections(bytes);
  const imports: { module: string; name: string }[] = [];
  const exports: string[] = [];
  const imp = secs.find((s) => s.id === 2);
  if (imp) {
    const c = { pos: imp.contentStart };
    const n = readU32(bytes, c);
    for (let i = 0; i < n; i++) {
      const module = name(c);
      const field = name(c);
      const kind = bytes[c.pos++]!;
      if (kind === 0x00) readU32(bytes, c);
      else if (kind === 0x01) c.pos++, readLimits(bytes, c);
      else if (kind === 0x02) readLimits(bytes, c);
      else if (kind === 0x03) c.pos += 2;
      else if (kind === 0x04) c.pos++, readU32(bytes, c);
      else throw new SandboxError(`not a wasm module: unknown import kind ${kind}`);
      imports.push({ module, name: field });
    }
  }
  const exp = secs.find((s) => s.id === 7);
  if (exp) {
    const c = { pos: exp.contentStart };
    const n = readU32(bytes, c);
    for (let i = 0; i < n; i++) {
      exports.push(name(c));
      c.pos++; // kind
      readU32(bytes, c); // index
    }
  }
  return { imports, exports };
}
