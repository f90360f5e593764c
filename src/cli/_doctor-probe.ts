/**
 * The network half of `exoclaw doctor`: one cheap, read-only request per provider endpoint (does it
 * take the key?), the public URL's `/health`, and whether a gateway answers on the configured port.
 * A key travels only in a request header, never in a URL or a message, and every message is
 * scrubbed of the key before it is returned.
 */
import { PROVIDERS } from "../config/index.ts";
import { scrub } from "../lib/log.ts";
import type { AgentConfig } from "../config/schema.ts";
import { describeError } from "../lib/errors.ts";

/** What one request taught us; `url` is the address tried (no secret in it). */
export type ProbeResult =
  | { kind: "ok"; url: string; status: number; body: unknown }
  | { kind: "refused"; url: string; status: number }
  | { kind: "status"; url: string; status: number }
  | { kind: "unreachable"; url: string; reason: string };

type Provider = AgentConfig["provider"];

/**
 * The cheapest authenticated request of each wire API: list the models. The base URL means what it
 * means to the provider (./../agent/providers): OpenAI's and Gemini's include the version path.
 */
export interface ModelsRequest {
  url: string;
  headers: Record<string, string>;
  /** Gemini answers a bad key with 400 API_KEY_INVALID, not 401. */
  refused?: (status: number, body: string) => boolean;
}

export function modelsRequest(provider: Provider, baseUrl: string, key: string | null): ModelsRequest {
  const entry = PROVIDERS[provider];
  const url = `${(baseUrl || entry.baseUrl).replace(/\/+$/, "")}${entry.modelsPath}`;
  return {
    url,
    headers: entry.authHeaders(key),
    ...(provider === "gemini" && {
      refused: (status: number, body: string) => status === 400 && body.includes("API_KEY_INVALID"),
    }),
  };
}

/** GET `url`; never throws. 401/403 is "refused"; a network failure or timeout is "unreachable". */
export async function probe(
  url: string,
  opts: {
    headers?: Record<string, string>;
    timeoutMs: number;
    secret?: string | null;
    insecure?: boolean;
    refused?: ModelsRequest["refused"];
  },
): Promise<ProbeResult> {
  const clean = (s: string) => (opts.secret ? scrub(s, [opts.secret]) : s);
  try {
    const res = await fetch(url, {
      headers: opts.headers ?? {},
      signal: AbortSignal.timeout(opts.timeoutMs),
      redirect: "manual",
      // Only for our own gateway's /health on this machine: it carries no secret either way.
      ...(opts.insecure && { tls: { rejectUnauthorized: false } }),
    });
    const text = await res.text().catch(() => "");
    if (res.status === 401 || res.status === 403 || opts.refused?.(res.status, text))
      return { kind: "refused", url, status: res.status };
    if (res.status < 200 || res.status > 299) return { kind: "status", url, status: res.status };
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: the caller decides whether that matters
    }
    return { kind: "ok", url, status: res.status, body };
  } catch (e) {
    const name = e instanceof Error ? e.name : "";
    const reason =
      name === "TimeoutError" || name === "AbortError" ? `no answer within ${opts.timeoutMs} ms` : describeError(e);
    return { kind: "unreachable", url, reason: clean(reason) };
  }
}

/** True when `body` is exoclaw's `/health` answer; returns its version (or "" when it names none). */
export function exoclawHealth(body: unknown): string | null {
  if (!body || typeof body !== "object" || (body as { status?: unknown }).status !== "ok") return null;
  const version = (body as { version?: unknown }).version;
  return typeof version === "string" ? version : "";
}
