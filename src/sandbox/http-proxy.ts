/**
 * `exo_http`, the one way out of a plugin: the host checks every request against the operator's
 * allowlist, fills `{{secret:NAME}}` placeholders only for granted names and only for allowed
 * hosts, caps the response, and scrubs secret values from whatever goes back to the guest.
 * Never throws: every failure is a `{status: 0, error}` answer the guest can read.
 */
import * as v from "valibot";
import { scrub } from "../lib/log.ts";

export interface HttpGrant {
  /** Hostnames (`api.example.com`), wildcards (`*.example.com`), optionally with `:port`. */
  allowedHosts: readonly string[];
  /** Granted secret names → values, resolved by the host. */
  secrets: Readonly<Record<string, string>>;
  /** The input of the call making the request (text someone else wrote). */
  untrustedInput?: string;
}

export interface HttpProxyOptions {
  maxResponseBytes: number;
  timeoutMs: number;
  fetch?: typeof fetch;
}

const Request = v.object({
  method: v.optional(v.pipe(v.string(), v.regex(/^[A-Z]{1,10}$/)), "GET"),
  url: v.string(),
  headers: v.optional(v.record(v.string(), v.string()), {}),
  body: v.optional(v.string(), ""),
});

const PLACEHOLDER = /\{\{secret:([a-z0-9_-]+)\}\}/g;

/** True when `url`'s host (and port, if the entry names one) is on the allowlist. */
export function isHostAllowed(allowed: readonly string[], url: URL): boolean {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return allowed.some((entry) => {
    const e = entry.toLowerCase();
    const m = /^(.*?)(?::(\d+))?$/.exec(e.startsWith("[") ? e.replace(/^\[|\](?=:|$)/g, "") : e)!;
    const pattern = m[1]!;
    if (m[2] !== undefined && m[2] !== port) return false;
    if (pattern === "*") return true;
    if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
    return host === pattern;
  });
}

function fill(text: string, secrets: Readonly<Record<string, string>>, missing: Set<string>): string {
  return text.replace(PLACEHOLDER, (_, name: string) => {
    const value = secrets[name];
    if (value === undefined) {
      missing.add(name);
      return "";
    }
    return value;
  });
}

async function readCapped(res: Response, max: number): Promise<{ text: string; truncated: boolean }> {
  const reader = res.body?.getReader();
  if (!reader) return { text: "", truncated: false };
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return { text: "", truncated: true };
    }
    chunks.push(value);
  }
  return { text: new TextDecoder().decode(Buffer.concat(chunks)), truncated: false };
}

/** Performs one guest request; returns the JSON text handed back to the guest. */
export async function proxyHttp(requestJson: string | null, grant: HttpGrant, opts: HttpProxyOptions): Promise<string> {
  const secretValues = Object.values(grant.secrets);
  const answer = (o: Record<string, unknown>) => scrub(JSON.stringify(o), secretValues);
  const refuse = (error: string) => answer({ status: 0, error });

  let parsed: unknown;
  try {
    parsed = JSON.parse(requestJson ?? "");
  } catch {
    return refuse("request is not JSON");
  }
  const r = v.safeParse(Request, parsed);
  if (!r.success) return refuse("request must be {method, url, headers?, body?} with string values");
  const req = r.output;

  // The allowlist is checked on the URL as written, before any secret is filled in.
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return refuse("invalid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return refuse(`scheme ${url.protocol} is not allowed`);
  if (url.username || url.password) return refuse("credentials in the URL are not allowed; use {{secret:NAME}} in a header");
  if (!isHostAllowed(grant.allowedHosts, url)) return refuse(`host ${url.host} is not in this plugin's allowed_hosts`);

  const missing = new Set<string>();
  const finalUrl = fill(req.url, grant.secrets, missing);
  const headers: Record<string, string> = {};
  for (const [k, value] of Object.entries(req.headers)) headers[k] = fill(value, grant.secrets, missing);
  if (missing.size > 0) return refuse(`secret ${[...missing].join(", ")} is not granted to this plugin`);
  try {
    if (new URL(finalUrl).host !== url.host) return refuse("a secret may not change the request's host");
  } catch {
    return refuse("invalid URL after filling secrets");
  }

  const doFetch = opts.fetch ?? fetch;
  try {
    const res = await doFetch(finalUrl, {
      method: req.method,
      headers,
      ...(req.body !== "" && req.method !== "GET" && req.method !== "HEAD" && { body: req.body }),
      // A redirect could lead anywhere; the plugin sees it and may ask again (through the allowlist).
      redirect: "manual",
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    const { text, truncated } = await readCapped(res, opts.maxResponseBytes);
    if (truncated) return refuse(`response larger than ${opts.maxResponseBytes} bytes`);
    const outHeaders: Record<string, string> = {};
    res.headers.forEach((value, key) => (outHeaders[key] = value));
    return answer({ status: res.status, headers: outHeaders, body: text });
  } catch (e) {
    const name = (e as Error).name;
    return refuse(name === "TimeoutError" || name === "AbortError" ? `request timed out after ${opts.timeoutMs} ms` : `request failed: ${(e as Error).message}`);
  }
}
