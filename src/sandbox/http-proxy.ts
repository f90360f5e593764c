/**
 * `exo_http`, the one way out of a plugin: the host checks every request against the operator's
 * allowlist, resolves the name itself and checks every address it resolves to (no loopback, private,
 * link-local, metadata… unless that address is granted as an IP literal; never the gateway itself),
 * connects to the checked address (TLS still verified against the name), sets `Host` itself, fills
 * `{{secret:NAME}}` placeholders only for granted names, bound hosts, and placeholders the plugin did
 * not get from its untrusted input, caps the response, and scrubs secret values (in every encoding)
 * from whatever goes back to the guest.
 * Never throws: every failure is a `{status: 0, error}` answer the guest can read.
 */
import * as v from "valibot";
import { scrub } from "../lib/log.ts";
import {
  type AllowEntry,
  checkDestination,
  entryMatches,
  fetchPinned,
  HOST_ONLY_HEADER,
  parseAllowEntry,
  pinnedUrl,
  readCapped,
} from "./egress.ts";
import { describeError } from "../lib/errors.ts";

export interface HttpGrant {
  /** Allowlist entries: `host`, `host:port`, `*.host`, `[v6]:port`, IP literals, optional `http://` / `https://` prefix. */
  allowedHosts: readonly string[];
  /** Granted secret names → values, resolved by the host. */
  secrets: Readonly<Record<string, string>>;
  /** Secret name → the allowlist entries it may be sent to; a name without an entry may go to any allowed host. */
  secretHosts?: Readonly<Record<string, readonly string[]>>;
  /**
   * The text of the plugin call's input (tool input JSON, webhook body, model reply). A placeholder
   * named in it came from a model, user or webhook and is never filled in this call.
   */
  untrustedInput?: string;
}

export interface HttpProxyOptions {
  maxResponseBytes: number;
  timeoutMs: number;
  fetch?: typeof fetch;
  /** Name resolution (tests); dns.lookup with every address by default. */
  resolve?: (host: string) => Promise<string[]>;
  /** The gateway's own listeners: never reachable from a plugin, granted or not. */
  selfAddresses?: () => readonly { address: string; port: number }[];
  /** Extra CA certificates (PEM) trusted for https (tests). */
  ca?: string;
}

const Request = v.object({
  method: v.optional(v.pipe(v.string(), v.regex(/^[A-Z]{1,10}$/)), "GET"),
  url: v.string(),
  headers: v.optional(v.record(v.string(), v.string()), {}),
  body: v.optional(v.string(), ""),
});

const PLACEHOLDER = /\{\{secret:([a-z0-9_-]+)\}\}/g;
const ANY_CASE_PLACEHOLDER = /\{\{\s*secret\s*:\s*([a-z0-9_-]+)\s*\}\}/gi;
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;

/**
 * Every secret name a `{{secret:NAME}}` placeholder in `text` names (lowercase): as written, in any
 * letter case, inside any JSON string (so `\u007b` escapes count), and percent-decoded.
 */
export function placeholdersIn(text: string): Set<string> {
  const names = new Set<string>();
  const seen = new Set<string>();
  const scan = (s: string, depth: number) => {
    if (seen.has(s) || depth > 3) return;
    seen.add(s);
    for (const m of s.matchAll(ANY_CASE_PLACEHOLDER)) names.add(m[1]!.toLowerCase());
    for (const decoded of [percentDecode(s), percentDecode(s.replace(/\+/g, " "))])
      if (decoded !== s) scan(decoded, depth + 1);
  };
  scan(text, 0);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return names;
  }
  const walk = (x: unknown, depth: number): void => {
    if (depth > 64) return;
    if (typeof x === "string") {
      scan(x, 0);
      // A string that is itself JSON (a tool input carried inside a webhook body) is walked too.
      if (/^\s*[[{"]/.test(x)) {
        try {
          walk(JSON.parse(x), depth + 1);
        } catch {
          // not JSON
        }
      }
    } else if (Array.isArray(x)) x.forEach((y) => walk(y, depth + 1));
    else if (x && typeof x === "object") for (const [k, y] of Object.entries(x)) scan(k, 0), walk(y, depth + 1);
  };
  walk(parsed, 0);
  return names;
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

function usedPlaceholders(texts: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const t of texts) for (const m of t.matchAll(PLACEHOLDER)) out.add(m[1]!);
  return out;
}

function fill(text: string, secrets: Readonly<Record<string, string>>): string {
  return text.replace(PLACEHOLDER, (_, name: string) => secrets[name] ?? "");
}

/** Performs one guest request; returns the JSON text handed back to the guest. */
export async function proxyHttp(requestJson: string | null, grant: HttpGrant, opts: HttpProxyOptions): Promise<string> {
  const secretValues = Object.values(grant.secrets);
  const clean = (t: string) => scrub(t, secretValues);
  // Every string is scrubbed before serialisation: a mask laid over JSON text could land after a
  // backslash and leave invalid JSON behind.
  const cleanDeep = (v: unknown): unknown =>
    typeof v === "string"
      ? clean(v)
      : v && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [clean(k), cleanDeep(x)]))
        : v;
  const answer = (o: Record<string, unknown>) => JSON.stringify(cleanDeep(o));
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
  if (url.username || url.password)
    return refuse("credentials in the URL are not allowed; use {{secret:NAME}} in a header");
  const entries = grant.allowedHosts.map(parseAllowEntry).filter((e): e is AllowEntry => e !== null);
  const matched = entries.filter((e) => entryMatches(e, url));
  if (matched.length === 0) return refuse(`host ${url.host} is not in this plugin's allowed_hosts`);

  for (const [k, value] of Object.entries(req.headers)) {
    if (!TOKEN.test(k)) return refuse(`invalid header name ${JSON.stringify(k.slice(0, 40))}`);
    if (/[\r\n\0]/.test(value)) return refuse(`header ${k}: CR, LF and NUL are not allowed in a header value`);
  }

  // Secrets: granted, not named by the call's untrusted input, and bound to this host.
  const used = usedPlaceholders([req.url, ...Object.values(req.headers)]);
  const fromInput = grant.untrustedInput ? placeholdersIn(grant.untrustedInput) : new Set<string>();
  for (const name of used) {
    if (grant.secrets[name] === undefined) return refuse(`secret ${name} is not granted to this plugin`);
    if (fromInput.has(name.toLowerCase())) {
      return refuse(
        `secret ${name}: its placeholder came from the call's input (model, user or webhook text) and is never filled`,
      );
    }
    const bound = grant.secretHosts?.[name];
    const where = bound
      ? bound
          .map(parseAllowEntry)
          .filter((e): e is AllowEntry => e !== null)
          .filter((e) => entryMatches(e, url))
      : matched;
    if (where.length === 0)
      return refuse(`secret ${name} may only be sent to ${bound!.join(", ") || "no host"}, not ${url.host}`);
    if (url.protocol !== "https:" && !where.some((e) => e.scheme === "http:" || e.ip)) {
      return refuse(`secret ${name} is sent only over https (grant http://${url.host} explicitly to allow plain http)`);
    }
  }

  const finalUrl = fill(req.url, grant.secrets);
  let target: URL;
  try {
    target = new URL(finalUrl);
  } catch {
    return refuse("invalid URL after filling secrets");
  }
  if (target.host !== url.host || target.protocol !== url.protocol || target.username || target.password) {
    return refuse("a secret may not change the request's host");
  }

  // Resolve once; every address must pass; the connection goes to the address that was checked.
  const checked = await checkDestination(url, entries, { ...opts, who: { one: "a plugin", all: "plugins" } });
  if ("error" in checked) return refuse(checked.error);

  const headers: Record<string, string> = {};
  for (const [k, value] of Object.entries(req.headers))
    if (!HOST_ONLY_HEADER.test(k)) headers[k] = fill(value, grant.secrets);

  try {
    // A redirect could lead anywhere; the plugin sees it and may ask again (through the allowlist).
    const res = await fetchPinned(target, checked.address, {
      method: req.method,
      headers,
      ...(req.body !== "" && req.method !== "GET" && req.method !== "HEAD" && { body: req.body }),
      signal: AbortSignal.timeout(opts.timeoutMs),
      ca: opts.ca,
      fetch: opts.fetch,
    });
    const body = await readCapped(res, opts.maxResponseBytes);
    if (!body) return refuse(`response larger than ${opts.maxResponseBytes} bytes`);
    const text = new TextDecoder().decode(body);
    const outHeaders: Record<string, string> = {};
    res.headers.forEach((value, key) => (outHeaders[key] = value));
    return answer({ status: res.status, headers: outHeaders, body: text });
  } catch (e) {
    const name = (e as Error).name;
    const why =
      name === "TimeoutError" || name === "AbortError"
        ? `request timed out after ${opts.timeoutMs} ms`
        : `request failed: ${describeError(e)}`;
    return refuse(why.split(pinnedUrl(url, checked.address).host).join(url.host));
  }
}
