/**
 * The address of a message and the two keys built from it (SPEC §8): the session key
 * `<agent>:<channel>:<account>:<peer|main>` (plus `:<thread>` for a thread) and the person key
 * `<channel>:<account>:<peer|main>`. Both are written with one escaping function ({@link escapeComponent}
 * and its peer variant), so neither can be forged from crafted ids.
 *
 * Escaping, so a key is unambiguous and parses back to exactly what built it:
 * - in every component, `%` becomes `%25` and `:` becomes `%3A` (upper-case hex); nothing else is
 *   touched, so ordinary keys stay readable (`main:telegram:bot1:12345`);
 * - the peer component is the bare word `main` when the address has no peer; a real peer named
 *   `main` is written `%6Dain` (its `m` percent-encoded), so the two never collide. Other
 *   components are never escaped that way: agent `main` stays `main`.
 * - a thread is present when the address's `thread` is not `undefined` (an empty thread is a
 *   thread, and gives a trailing `:`); likewise an empty peer is a peer, written as nothing.
 *
 * Every key has exactly one spelling: `parseSessionKey` rejects any other (lower-case hex,
 * needless escapes such as `%41`), so two distinct strings never name the same session.
 */

/**
 * Where an inbound message came from. Every field is an opaque string from the chat platform;
 * `undefined` means the platform has no such notion for this message (an empty string is a value).
 */
export interface InboundAddress {
  channel: string;
  account: string;
  peer?: string;
  guild?: string;
  team?: string;
  thread?: string;
}

/** The components of a session key; `null` for a peer or thread the address did not have. */
export interface SessionKeyParts {
  agent: string;
  channel: string;
  account: string;
  peer: string | null;
  thread: string | null;
}

/** Where a session lives: its key and the parts it was built from (what the store keeps). */
export interface SessionAddress extends SessionKeyParts {
  key: string;
}

const NO_PEER = "main";
const LITERAL_MAIN_PEER = "%6Dain";
const NEEDS_ESCAPE = /[%:]/;

/** Escapes one key component: `%` → `%25`, `:` → `%3A`, nothing else. */
export function escapeComponent(s: string): string {
  // Most components need no escaping; skip the allocating replace on the hot path.
  return NEEDS_ESCAPE.test(s) ? s.replaceAll("%", "%25").replaceAll(":", "%3A") : s;
}

/** Escapes the peer component: no peer is the bare word `main`, a real peer `main` is `%6Dain`. */
function escapePeer(peer: string | null | undefined): string {
  if (peer === undefined || peer === null) return NO_PEER;
  return peer === NO_PEER ? LITERAL_MAIN_PEER : escapeComponent(peer);
}

function build(
  agent: string,
  channel: string,
  account: string,
  peer: string | null | undefined,
  thread: string | null | undefined,
): string {
  const base = `${escapeComponent(agent)}:${escapeComponent(channel)}:${escapeComponent(account)}:${escapePeer(peer)}`;
  return thread === undefined || thread === null ? base : `${base}:${escapeComponent(thread)}`;
}

/** The session key for `agent` and an address; pure, never throws. See the module doc for escaping. */
export function sessionKey(agent: string, addr: InboundAddress): string {
  return build(agent, addr.channel, addr.account, addr.peer, addr.thread);
}

/**
 * Whose words these are: `<channel>:<account>:<peer|main>`, escaped exactly like a session key's
 * components, so two distinct people never share a key (account "a:b" + peer "c" is not account "a"
 * + peer "b:c"; a peer named `main` is not a chat without a peer). Memory's facts, pairing approvals,
 * per-person budgets and rate limits are all keyed by it.
 */
export function personKey(channel: string, account: string, peer: string | null | undefined): string {
  return `${escapeComponent(channel)}:${escapeComponent(account)}:${escapePeer(peer)}`;
}

const ESCAPE = /%([0-9A-F]{2})/g;

/** Decodes `%XX`; null when a `%` does not start a well-formed upper-case escape. */
function unescape(s: string): string | null {
  if (!s.includes("%")) return s;
  if (s.replace(ESCAPE, "").includes("%")) return null;
  return s.replace(ESCAPE, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/**
 * The inverse of {@link sessionKey}: the components of `key`, or `null` when `key` is not a key
 * `sessionKey` could have produced (wrong number of components, a stray `%`, a non-canonical
 * escape). Never throws.
 */
export function parseSessionKey(key: string): SessionKeyParts | null {
  const raw = key.split(":");
  if (raw.length !== 4 && raw.length !== 5) return null;
  const parts: string[] = [];
  for (const r of raw) {
    const s = unescape(r);
    if (s === null) return null;
    parts.push(s);
  }
  const [agent = "", channel = "", account = "", peerPart = "", thread] = parts;
  const peer = raw[3] === NO_PEER ? null : peerPart;
  const parsed: SessionKeyParts = { agent, channel, account, peer, thread: thread ?? null };
  // Re-encoding is the simplest complete check that `key` is the one canonical spelling.
  return build(agent, channel, account, peer, parsed.thread) === key ? parsed : null;
}
