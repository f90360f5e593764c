/**
 * Reading a platform's answer to a send (SPEC §7, §13). A channel plugin declares how its platform
 * reports a refusal in `describe` (`channel.send_result`, docs/plugins.md); the host reads every
 * answer the same way for it, and decides whether to retry:
 *
 * - `"http"` (the default): the HTTP status decides. 2xx is delivered.
 * - `"json_ok"`: as "http", and a 2xx whose JSON body says `"ok": false` is refused too (Slack answers
 *   its errors with 200 `{"ok":false,"error":"…"}`; Telegram's bodies say `ok` too).
 *
 * A refusal is permanent (the same request will never succeed: a blocked bot, a missing chat, a bad
 * token) or transient (a rate limit, an outage, no answer at all). The platform's own hint of when to
 * try again is read from `Retry-After` (seconds or an HTTP date), Telegram's
 * `parameters.retry_after` and Discord's `retry_after` (float seconds) in the body; a hint makes the
 * refusal transient.
 */

export type SendResultStyle = "http" | "json_ok";

/** What the host's proxy returned for one request (`{status: 0, error}` when no answer came). */
export interface PlatformAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  error?: string;
}

export type SendVerdict = { ok: true } | SendRefusal;

export interface SendRefusal {
  ok: false;
  /** For the operator (`inbox list`): the status and the platform's own words, control characters removed. */
  error: string;
  /** Retrying the same request cannot succeed: dead-letter at once. */
  permanent: boolean;
  /** The platform's hint: try again after this many ms. */
  retry_after_ms?: number;
}

/**
 * Slack's `ok:false` errors worth retrying (docs: rate limits and server-side failures); every other
 * Slack error names something wrong with the request or the credentials (`channel_not_found`,
 * `not_in_channel`, `is_archived`, `invalid_auth`, `account_inactive`, `token_revoked`,
 * `msg_too_long`…) and is permanent: the operator fixes it, then `exoclaw inbox retry`.
 */
const TRANSIENT_ERRORS = new Set([
  "ratelimited",
  "rate_limited",
  "internal_error",
  "fatal_error",
  "service_unavailable",
  "request_timeout",
]);

/** Meta Graph error codes that are rate limits, whatever the HTTP status (wire-formats B3.4). */
const GRAPH_RATE_LIMITS = new Set([4, 80007, 130429, 131056]);

/** A hint longer than this is capped (the message is tried again then, and may get a new hint). */
const MAX_HINT_MS = 24 * 3_600_000;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function parseBody(body: string | undefined): Json | null {
  if (!body) return null;
  try {
    const v = JSON.parse(body) as unknown;
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}

/** `Retry-After`: delay-seconds, or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function bodyHint(body: Json | null): number | null {
  if (!body) return null;
  const params = body.parameters;
  const s = isObject(params) && typeof params.retry_after === "number" ? params.retry_after : body.retry_after;
  return typeof s === "number" && Number.isFinite(s) && s >= 0 ? Math.round(s * 1000) : null;
}

/** The platform's own words: Slack `error`, Telegram `description`, Graph `error.message`, Discord `message`. */
function reasonOf(body: Json | null): string | null {
  if (!body) return null;
  const e = body.error;
  const text =
    typeof body.description === "string"
      ? body.description
      : typeof e === "string"
        ? e
        : isObject(e) && typeof e.message === "string"
          ? e.message
          : typeof body.message === "string"
            ? body.message
            : null;
  return text === null ? null : clean(text);
}

const clean = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ").slice(0, 200);

/** 4xx is the request's fault, except timeouts, "too early" and rate limits. */
const isPermanentStatus = (status: number) =>
  status >= 400 && status < 500 && status !== 408 && status !== 425 && status !== 429;

function isGraphRateLimit(body: Json | null): boolean {
  const e = body?.error;
  return isObject(e) && ((typeof e.code === "number" && GRAPH_RATE_LIMITS.has(e.code)) || e.is_transient === true);
}

/** Reads one answer in the plugin's declared style. Never throws. */
export function readSendResult(style: SendResultStyle, res: PlatformAnswer, now: number): SendVerdict {
  if (res.status === 0)
    return { ok: false, error: clean(res.error ?? "no answer from the platform"), permanent: false };
  const body = parseBody(res.body);
  const refusedInBody = style === "json_ok" && res.status >= 200 && res.status < 300 && body?.ok === false;
  if (res.status >= 200 && res.status < 300 && !refusedInBody) return { ok: true };
  const hint = parseRetryAfter(res.headers?.["retry-after"], now) ?? bodyHint(body);
  const reason = reasonOf(body);
  let permanent: boolean;
  let error: string;
  if (refusedInBody) {
    // Telegram numbers its errors like HTTP statuses; Slack names them.
    const code = body.error_code;
    permanent =
      typeof code === "number"
        ? isPermanentStatus(code)
        : !(typeof body.error === "string" && TRANSIENT_ERRORS.has(body.error));
    error = `HTTP ${res.status}, ok: false${typeof code === "number" ? ` (${code})` : ""}${reason ? `: ${reason}` : ""}`;
  } else {
    permanent =
      isPermanentStatus(res.status) &&
      !isGraphRateLimit(body) &&
      !(typeof body?.error === "string" && TRANSIENT_ERRORS.has(body.error));
    error = `HTTP ${res.status}${reason ? `: ${reason}` : ""}`;
  }
  if (hint !== null) return { ok: false, error, permanent: false, retry_after_ms: Math.min(hint, MAX_HINT_MS) };
  return { ok: false, error, permanent };
}
