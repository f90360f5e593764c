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

/** Replaces secret values in free text; secrets shorter than 4 chars are ignored to avoid mangling logs. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join(MASK);
  return out;
}

function redact(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === "string") return scrub(value, secrets);
  if (value instanceof Error) return scrub(value.message, secrets);
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== "" && v !== undefined && typeof v !== "boolean" ? MASK : redact(v, secrets, depth + 1);
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
