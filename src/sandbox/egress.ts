/**
 * Where a plugin's (or the MCP transport's) request may go: the allowlist grammar, address
 * classification, name resolution done once on the host, and the fetch pinned to the address that
 * was checked (fetchPinned: that address is the one connected to), with a capped body read.
 *
 * Allowlist entries: `host`, `host:port`, `*.host`, `[v6]:port`, `1.2.3.4:port`, each optionally with a
 * scheme prefix (`http://host:port`, `https://host`). No port means the scheme's default port only.
 * A non-public address (loopback, private, link-local, CGNAT, multicast, …) is reachable only when
 * granted as an IP literal entry; a name resolving to one is refused even when the name is granted.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { describeError } from "../lib/errors.ts";

export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "cgnat"
  | "multicast"
  | "unspecified"
  | "broadcast"
  | "reserved";

export interface AllowEntry {
  scheme: "http:" | "https:" | null;
  /** Lowercase name, `*.suffix` pattern's suffix (with leading dot), or canonical IP (v6 without brackets). */
  host: string;
  wildcard: boolean;
  /** An IP literal entry: the only way to grant a non-public address. */
  ip: boolean;
  port: number | null;
}

/** Parses one allowlist entry; null when it is not in the grammar (such an entry grants nothing). */
export function parseAllowEntry(raw: string): AllowEntry | null {
  let e = raw.trim().toLowerCase();
  let scheme: AllowEntry["scheme"] = null;
  const s = /^(https?):\/\//.exec(e);
  if (s) {
    scheme = `${s[1]}:` as AllowEntry["scheme"];
    e = e.slice(s[0].length).replace(/\/$/, "");
  }
  if (e === "" || /[/?#@\s]/.test(e)) return null;
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(e);
  if (!m) {
    // A bare IPv6 address without brackets (no port possible).
    if (isIP(e) === 6) return { scheme, host: canonicalIp(e), wildcard: false, ip: true, port: null };
    return null;
  }
  const port = m[2] === undefined ? null : Number(m[2]);
  if (port !== null && (port < 1 || port > 65535)) return null;
  let host = m[1]!;
  if (host.startsWith("*."))
    return host.length > 2 ? { scheme, host: host.slice(1), wildcard: true, ip: false, port } : null;
  if (host === "*") return { scheme, host: "", wildcard: true, ip: false, port };
  host = host.replace(/^\[|\]$/g, "");
  if (isIP(host)) return { scheme, host: canonicalIp(host), wildcard: false, ip: true, port };
  // Normalise the way the URL parser does (IDN, odd IPv4 spellings like 0x7f.1 become dotted quads).
  let normal: string;
  try {
    normal = new URL(`http://${host}`).hostname;
  } catch {
    return null;
  }
  if (isIP(normal)) return { scheme, host: canonicalIp(normal), wildcard: false, ip: true, port };
  return { scheme, host: normal.replace(/\.$/, ""), wildcard: false, ip: false, port };
}

/** Default port of a URL's scheme. */
export function urlPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
}

/** The URL's host without IPv6 brackets, lowercase (WHATWG URL has already normalised IP spellings). */
export function urlHost(url: URL): string {
  // `name.` is the same name as `name` (fully qualified): match it the same way.
  const h = url.hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "");
  return isIP(h) ? canonicalIp(h) : h;
}

/** True when `entry` matches this URL's scheme, host NAME (or IP literal) and port. */
export function entryMatches(entry: AllowEntry, url: URL): boolean {
  if (entry.scheme && entry.scheme !== url.protocol) return false;
  if ((entry.port ?? (url.protocol === "https:" ? 443 : 80)) !== urlPort(url)) return false;
  const host = urlHost(url);
  if (entry.wildcard)
    return entry.host === "" ? !isIP(host) : host.endsWith(entry.host) && host.length > entry.host.length;
  return host === entry.host;
}

/** True when `entry` grants the non-public `address` itself at this scheme and port. */
export function entryGrantsAddress(entry: AllowEntry, address: string, url: URL): boolean {
  if (!entry.ip || (entry.scheme && entry.scheme !== url.protocol)) return false;
  if ((entry.port ?? (url.protocol === "https:" ? 443 : 80)) !== urlPort(url)) return false;
  return entry.host === canonicalIp(address);
}

/** Eight 16-bit groups of an IPv6 address (embedded dotted IPv4 allowed); null if not IPv6. */
function v6Groups(ip: string): number[] | null {
  if (isIP(ip) !== 6) return null;
  let s = ip.toLowerCase().replace(/%.*$/, "");
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const b = dotted[1]!.split(".").map(Number);
    s =
      s.slice(0, -dotted[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = s.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail === undefined ? [] : tail ? tail.split(":") : [];
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const all = [...h, ...Array<string>(fill).fill("0"), ...t].map((g) => parseInt(g, 16));
  return all.length === 8 && all.every((n) => n >= 0 && n <= 0xffff) ? all : null;
}

const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/**
 * The IPv4 address an IPv6 form stands for, when it embeds one that a router would deliver to
 * (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16); else null.
 */
export function embeddedV4(ip: string): string | null {
  const g = v6Groups(ip);
  if (!g) return null;
  const zero = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zero(5) && g[5] === 0xffff) return v4(g[6]!, g[7]!);
  if (zero(6) && (g[6]! !== 0 || g[7]! > 1)) return v4(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!);
  return null;
}

/** One spelling per address: dotted quad for IPv4, compressed lowercase for IPv6 (as WHATWG URL prints it). */
export function canonicalIp(ip: string): string {
  const bare = ip.replace(/^\[|\]$/g, "");
  if (isIP(bare) === 4) return bare.split(".").map(Number).join(".");
  try {
    return new URL(`http://[${bare}]`).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return bare.toLowerCase();
  }
}

function classifyV4(ip: string): AddressClass {
  const [a, b, c, d] = ip.split(".").map(Number) as [number, number, number, number];
  if (a === 0) return "unspecified";
  if (a === 127) return "loopback";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return "private";
  if (a === 169 && b === 254) return "link-local";
  if (a === 100 && b >= 64 && b <= 127) return "cgnat";
  if (a >= 224 && a <= 239) return "multicast";
  if (a === 255 && b === 255 && c === 255 && d === 255) return "broadcast";
  // 240/4 (future use), 192.0.0/24 (protocol assignments), 198.18/15 (benchmarking).
  if (a >= 240 || (a === 192 && b === 0 && c === 0) || (a === 198 && (b === 18 || b === 19))) return "reserved";
  return "public";
}

/** Classifies an IP address (v4 or v6, any IPv6 form that embeds an IPv4 address by its IPv4 class). */
export function classifyAddress(ip: string): AddressClass {
  const bare = ip.replace(/^\[|\]$/g, "");
  if (isIP(bare) === 4) return classifyV4(bare);
  const g = v6Groups(bare);
  if (!g) return "reserved";
  if (g.every((x) => x === 0)) return "unspecified";
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return "loopback";
  const inner = embeddedV4(bare);
  if (inner) return classifyV4(inner);
  if ((g[0]! & 0xfe00) === 0xfc00) return "private";
  if ((g[0]! & 0xffc0) === 0xfe80) return "link-local";
  if ((g[0]! & 0xffc0) === 0xfec0) return "private"; // deprecated site-local
  if ((g[0]! & 0xff00) === 0xff00) return "multicast";
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return "private"; // local-use NAT64 (RFC 8215)
  if (g[0] === 0x100 && g.slice(1, 4).every((x) => x === 0)) return "reserved"; // discard-only
  return "public";
}

/**
 * Resolves a host to every address it has (an IP literal resolves to itself), within `timeoutMs`.
 * Throws on failure.
 */
export async function resolveAll(
  host: string,
  resolve?: (host: string) => Promise<string[]>,
  timeoutMs = 10_000,
): Promise<string[]> {
  if (isIP(host)) return [canonicalIp(host)];
  const pending = resolve
    ? resolve(host)
    : lookup(host, { all: true, verbatim: true }).then((list) => list.map((a) => a.address));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)),
  );
  const addrs = await Promise.race([pending, late]).finally(() => clearTimeout(timer));
  if (addrs.length === 0) throw new Error(`${host} has no address`);
  return addrs.map(canonicalIp);
}

/** The address as IPv4 when it is an IPv4-mapped/compatible IPv6 form, so both spellings compare equal. */
function unmapped(ip: string): string {
  const g = v6Groups(ip);
  if (g && g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0))
    return embeddedV4(ip) ?? canonicalIp(ip);
  return canonicalIp(ip);
}

let localCache: { at: number; set: Set<string> } | null = null;
/** Addresses of this machine's interfaces (refreshed every few seconds). */
function localAddresses(): Set<string> {
  if (localCache && Date.now() - localCache.at < 5000) return localCache.set;
  const set = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) set.add(unmapped(i.address));
  localCache = { at: Date.now(), set };
  return set;
}

/**
 * True when connecting to `address:port` reaches one of the gateway's own listeners. A listener on
 * 0.0.0.0 / :: (or a name) is reached through any local address with that port.
 */
export function isSelfAddress(
  address: string,
  port: number,
  self: readonly { address: string; port: number }[],
): boolean {
  const a = unmapped(address);
  // Connecting to the unspecified address reaches whatever listens on this machine at that port.
  if (classifyAddress(a) === "unspecified" && self.some((s) => s.port === port)) return true;
  for (const s of self) {
    if (s.port !== port) continue;
    const bare = s.address.replace(/^\[|\]$/g, "");
    const wildcard = !isIP(bare) || classifyAddress(bare) === "unspecified";
    if (wildcard) {
      const c = classifyAddress(a);
      if (c === "loopback" || c === "unspecified" || localAddresses().has(a)) return true;
    } else if (unmapped(bare) === a) return true;
  }
  return false;
}

/**
 * Resolves `url`'s host once and checks every address it has: public addresses pass; a non-public
 * one only when an IP literal entry of `entries` grants it; the unspecified address and the gateway's
 * own listeners never. Returns the address to connect to (the one that was checked), or why not.
 */
export async function checkDestination(
  url: URL,
  entries: readonly AllowEntry[],
  opts: {
    timeoutMs: number;
    resolve?: (host: string) => Promise<string[]>;
    selfAddresses?: () => readonly { address: string; port: number }[];
    /** Who is asking, for the messages: `{one: "a plugin", all: "plugins"}`. */
    who: { one: string; all: string };
  },
): Promise<{ address: string } | { error: string }> {
  const host = urlHost(url);
  const port = urlPort(url);
  let addresses: string[];
  try {
    addresses = await resolveAll(host, opts.resolve, opts.timeoutMs);
  } catch (e) {
    return { error: `cannot resolve ${host}: ${describeError(e)}` };
  }
  const self = opts.selfAddresses?.() ?? [];
  for (const a of addresses) {
    if (isSelfAddress(a, port, self))
      return { error: `${url.host} is the gateway itself, which ${opts.who.all} may never reach` };
    const kind = classifyAddress(a);
    if (kind === "public") continue;
    // 0.0.0.0 / :: as a destination means "this machine": never a grantable address.
    if (kind === "unspecified") return { error: `address ${a} (${kind}) is never reachable from ${opts.who.one}` };
    if (entries.some((e) => entryGrantsAddress(e, a, url))) continue;
    return {
      error:
        a === host
          ? `address ${url.host} is ${kind}; only an explicit IP literal entry (e.g. ${a.includes(":") ? `[${a}]` : a}:${port}) grants it`
          : `host ${host} resolves to a private address (${a}, ${kind}); grant the address itself to allow it`,
    };
  }
  return { address: addresses[0]! };
}

/** Headers only the host sets: where the request goes and how it is framed. */
export const HOST_ONLY_HEADER =
  /^(host|connection|keep-alive|transfer-encoding|content-length|te|trailer|upgrade|proxy-.*)$/i;

/** `url` aimed at `address` (its port kept): what is fetched when the connection is pinned. Its `host` is what connection errors name. */
export function pinnedUrl(url: URL, address: string): URL {
  const connect = new URL(url.href);
  connect.hostname = address.includes(":") ? `[${address}]` : address;
  connect.port = String(urlPort(url));
  return connect;
}

export interface PinnedRequest {
  method: string;
  /** Sent as given, with `Host` set to the URL's host (drop HOST_ONLY_HEADER names first). */
  headers: Readonly<Record<string, string>>;
  body?: RequestInit["body"] | undefined;
  signal: AbortSignal;
  /** Extra CA certificates (PEM) trusted for https (tests). */
  ca?: string | undefined;
  fetch?: typeof fetch | undefined;
}

/**
 * Sends `req` to `url` over a connection to `address` — the one checkDestination passed, so a second
 * name resolution cannot send it elsewhere (DNS rebinding). `Host` names the URL's host, TLS is
 * verified against that name, and redirects are never followed (the answer is handed back). Rejects
 * as fetch does; its messages name the address (pinnedUrl(url, address).host), for the caller to rewrite.
 */
export function fetchPinned(url: URL, address: string, req: PinnedRequest): Promise<Response> {
  const host = urlHost(url);
  return (req.fetch ?? fetch)(pinnedUrl(url, address).href, {
    method: req.method,
    headers: { ...req.headers, host: url.host },
    ...(req.body != null && { body: req.body }),
    redirect: "manual",
    signal: req.signal,
    ...(url.protocol === "https:" && {
      tls: { ...(host !== address && { serverName: host }), ...(req.ca && { ca: req.ca }) },
    }),
  } as RequestInit);
}

/** The whole body of `res`, or null (the rest cancelled) as soon as it is larger than `max` bytes. Rejects when the connection breaks mid-body. */
export async function readCapped(res: Response, max: number): Promise<Uint8Array | null> {
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}
