/**
 * Structured logging: one JSON object per line, or a short human line on a TTY.
 * Secrets never reach the sink: values under secret-looking keys are masked, and every
 * registered secret value is replaced wherever it appears in a message or field.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines all carry `fields`. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** "json" for machines; "pretty" for a person at a terminal. */
  format?: "json" | "pretty";
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
  /** Exact secret values (tokens, keys) to scrub from every line. */
  secrets?: readonly string[];
  now?: () => Date;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /token|secret|password|api[_-]?key|authorization|credential/i;
export const MASK = "***";

/**
 * Replaces secret values in free text, in every spelling a reflection could take: raw, JSON-escaped,
 * percent-encoded (either hex case, `+` for space, or every byte encoded), hex, base64 (standard and
 * URL-safe, at each of the 3 byte alignments, so `user:secret` inside Basic auth is caught too), any
 * letter case, and partial reflections (any run of max(8, half the secret) characters of it).
 * Secrets shorter than 4 chars are ignored to avoid mangling logs. The matcher for a set of secrets
 * is built once and cached: the log path calls this on every line.
 */
export function scrub(text: string, secrets: readonly string[]): string {
  if (text.length < 4 || secrets.length === 0) return text;
  const m = matcherFor(secrets);
  if (!m) return text;
  return scrubWith(scrubWith(text, m.folded, m), m.exact, null);
}

interface Matcher {
  /** Case-insensitive: raw, JSON, URL, hex and partial windows. */
  folded: RegExp;
  /** Case-sensitive: base64 cores. */
  exact: RegExp | null;
  /** Lowercased secrets, to extend a partial match as far as it follows a secret. */
  lower: string[];
}

const MATCHERS = new Map<string, Matcher | null>();
const MAX_WINDOW = 32;
const MAX_WINDOWS = 4096;
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

function base64Cores(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), bytes])
      .toString("base64")
      .replace(/=+$/, "");
    // Characters fully determined by the secret's bits, whatever surrounds it.
    const from = Math.ceil((8 * k) / 6);
    const to = Math.floor((8 * (k + bytes.length)) / 6);
    const core = enc.slice(from, to);
    if (core.length >= 4) out.push(core, core.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  return out;
}

function matcherFor(secrets: readonly string[]): Matcher | null {
  const key = secrets.join("\u0000");
  const cached = MATCHERS.get(key);
  if (cached !== undefined) return cached;
  const folded = new Set<string>();
  const exact = new Set<string>();
  const lower: string[] = [];
  for (const s of secrets) {
    if (s.length < 4) continue;
    lower.push(s.toLowerCase());
    const bytes = Buffer.from(s);
    const url = encodeURIComponent(s);
    const variants = [
      s,
      JSON.stringify(s).slice(1, -1),
      JSON.stringify(JSON.stringify(s).slice(1, -1)).slice(1, -1),
      url,
      url.replace(/%20/g, "+"),
      encodeURI(s),
      [...bytes].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""),
      bytes.toString("hex"),
    ];
    for (const x of variants) folded.add(x);
    // Partial reflections: any window this long is masked (and extended as far as it follows the secret).
    // Capped at 32 characters (a longer secret — a service-account JSON, a PEM key — would otherwise
    // need a regular expression too large to build), and at most ~4,096 windows per secret.
    const w = Math.min(MAX_WINDOW, Math.max(8, Math.ceil(s.length / 2)));
    const step = Math.max(1, Math.ceil((s.length - w) / MAX_WINDOWS));
    if (w < s.length) for (let i = 0; i + w <= s.length; i += step) folded.add(s.slice(i, i + w));
    for (const b of base64Cores(bytes)) exact.add(b);
  }
  let m: Matcher | null = null;
  if (lower.length > 0) {
    const alt = (set: Set<string>) =>
      [...set]
        .sort((a, b) => b.length - a.length)
        .map(escapeRe)
        .join("|");
    try {
      m = { folded: new RegExp(alt(folded), "gi"), exact: exact.size > 0 ? new RegExp(alt(exact), "g") : null, lower };
    } catch {
      // Still too large: the whole forms only (never throw: scrubbing sits on every error path).
      const whole = new Set(
        secrets.filter((x) => x.length >= 4).flatMap((x) => [x, JSON.stringify(x).slice(1, -1), encodeURIComponent(x)]),
      );
      m = { folded: new RegExp(alt(whole), "gi"), exact: null, lower };
    }
  }
  if (MATCHERS.size > 256) MATCHERS.clear();
  MATCHERS.set(key, m);
  return m;
}

/** Masks every match; with `extend`, a match is stretched while the text keeps following a secret. */
function scrubWith(text: string, re: RegExp | null, extend: Matcher | null): string {
  if (!re) return text;
  re.lastIndex = 0;
  let out = "";
  let last = 0;
  let lowerText: string | null = null;
  for (let hit = re.exec(text); hit; hit = re.exec(text)) {
    let end = hit.index + hit[0].length;
    if (extend) {
      lowerText ??= text.toLowerCase();
      const piece = hit[0].toLowerCase();
      for (const s of extend.lower) {
        for (let o = s.indexOf(piece); o !== -1; o = s.indexOf(piece, o + 1)) {
          let e = hit.index + piece.length;
          let j = o + piece.length;
          while (j < s.length && e < text.length && lowerText[e] === s[j]) e++, j++;
          end = Math.max(end, e);
        }
      }
    }
    out += text.slice(last, hit.index) + MASK;
    last = end;
    re.lastIndex = end;
  }
  return last === 0 ? text : out + text.slice(last);
}

function redact(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === "string") return scrub(value, secrets);
  if (value instanceof Error) return scrub(value.message, secrets);
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      SECRET_KEY.test(k) && v !== "" && v !== undefined && typeof v !== "boolean"
        ? MASK
        : redact(v, secrets, depth + 1);
  }
  return out;
}

export function createLogger(opts: LoggerOptions = {}, bound: LogFields = {}): Logger {
  const min = RANK[opts.level ?? "info"];
  const format = opts.format ?? (process.stderr.isTTY ? "pretty" : "json");
  const write = opts.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const secrets = opts.secrets ?? [];
  const now = opts.now ?? (() => new Date());

  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[level] < min) return;
    const all = redact({ ...bound, ...fields }, secrets) as LogFields;
    const text = scrub(msg, secrets);
    if (format === "json") {
      write(JSON.stringify({ ts: now().toISOString(), level, msg: text, ...all }));
    } else {
      const extra = Object.entries(all).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
      write([now().toISOString().slice(11, 19), level.toUpperCase().padEnd(5), text, ...extra].join(" "));
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger(opts, { ...bound, ...fields }),
  };
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = createLogger({ write: () => {}, level: "error" });
