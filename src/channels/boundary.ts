/**
 * What crosses between the host and a channel plugin, and back to the webhook's caller. A channel
 * plugin is sandboxed code that reads untrusted platform input; it gets the request minus anything
 * that authenticates it, it can have only the channel's send secrets filled into its outgoing
 * requests, and it shapes the webhook's response only through a short list of harmless headers.
 */
import { VERIFICATION_ROLES } from "./verify.ts";

/**
 * Headers that authenticate a request (the gateway token, cookies) or carry its signature. The
 * host has already checked them; a plugin has no use for them and must not be able to relay them.
 * Timestamps (`x-slack-request-timestamp`, `x-signature-timestamp`) are kept: they are not secret.
 */
const AUTH_HEADERS: ReadonlySet<string> = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "x-telegram-bot-api-secret-token",
  "x-signature-ed25519",
  "x-slack-signature",
]);

/** True when `value` contains one of `secrets` (a bearer token is "Bearer <token>"). */
function carries(value: string, secrets: readonly string[]): boolean {
  return secrets.some((s) => s !== "" && value.includes(s));
}

/**
 * The webhook's headers as a plugin may see them: no authentication or signature header
 * (`x-hub-signature*` included), and no header or query value that carries one of `secrets` (the
 * channel's secrets and the gateway token), whatever its name.
 */
export function forPlugin(
  values: Readonly<Record<string, string>>,
  secrets: readonly string[],
  isHeaders: boolean,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(values)) {
    const name = k.toLowerCase();
    if (isHeaders && (AUTH_HEADERS.has(name) || name.startsWith("x-hub-signature"))) continue;
    if (carries(value, secrets)) continue;
    out[k] = value;
  }
  return out;
}

/**
 * The secret roles a channel's outgoing requests may use: its send roles (`bot_token`,
 * `access_token`, …), never a verification role. The sandbox's proxy fills them only into requests
 * to the plugin's allowed hosts (the platform's API).
 */
export function sendSecrets(all: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(all).filter(([role]) => !VERIFICATION_ROLES.has(role)));
}

/** Content types a plugin may answer a webhook with; anything else (HTML, SVG) becomes text/plain. */
const SAFE_TYPE = /^(?:application\/json|text\/plain)(?:\s*;\s*charset=[\w-]+)?$/i;

/**
 * The response headers of a plugin's `reply`: only `content-type`, and only JSON or plain text. A
 * plugin must not set cookies, redirect, open CORS or otherwise speak for the gateway's origin.
 */
export function replyHeaders(fromPlugin: Readonly<Record<string, string>>): Record<string, string> {
  const type = Object.entries(fromPlugin)
    .find(([k]) => k.toLowerCase() === "content-type")?.[1]
    ?.trim();
  return {
    "content-type": type && SAFE_TYPE.test(type) ? type : "text/plain; charset=utf-8",
    "x-content-type-options": "nosniff",
  };
}

/** The placeholder a request's URL may use for the previous request's answer: its top-level `id`. */
const PREVIOUS_ID = "{{previous:id}}";
/** What may be filled in: an id (Discord's are snowflakes), never a path, a query or a host. */
const ID_VALUE = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * One of format_outgoing's requests, ready to send: `{{previous:id}}` in its URL becomes the string
 * `id` of the JSON answer to the request before it (a two-step send: open a DM, then post in it).
 * Returns why it cannot be sent (no earlier answer, or one without such an id) as a string.
 */
export function chainRequest<R extends { url: string }>(request: R, previous: string | undefined): R | string {
  if (!request.url.includes(PREVIOUS_ID)) return request;
  let id: unknown;
  try {
    id = previous === undefined ? undefined : (JSON.parse(previous) as { id?: unknown } | null)?.id;
  } catch {
    id = undefined;
  }
  if (typeof id !== "string" || !ID_VALUE.test(id))
    return `a request names ${PREVIOUS_ID}, but the answer before it has no id to fill in`;
  return { ...request, url: request.url.replaceAll(PREVIOUS_ID, id) };
}
