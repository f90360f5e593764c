/**
 * The one cheap call `exoclaw onboard` makes to check a key: the provider's list of models, at the
 * same endpoint (and with the same headers) the agent will use. Never throws; the key never appears
 * in what it returns.
 */
import { isProviderId, PROVIDERS } from "../config/index.ts";

export type KeyCheck =
  | { kind: "accepted"; url: string }
  /** 401/403: the provider does not take this key. */
  | { kind: "refused"; url: string; status: number }
  /** No answer (offline, DNS, refused connection, timeout). */
  | { kind: "unreachable"; url: string; detail: string }
  /** An answer that says nothing about the key (404 from a proxy, 5xx). */
  | { kind: "inconclusive"; url: string; status: number };

export const KEY_CHECK_TIMEOUT_MS = 5000;

const trim = (u: string) => u.replace(/\/+$/, "");

/**
 * The models endpoint of a provider (the registry's `modelsPath` after its base URL, which for OpenAI
 * and Gemini includes the API version: `…/v1`, `…/v1beta`), with the registry's key headers. Gemini's
 * key goes in the `x-goog-api-key` header, as the agent sends it, rather than in the URL (`?key=`),
 * so it cannot end up in a proxy's access log.
 */
export function modelsRequest(
  provider: string,
  key: string,
  baseUrl: string,
): { url: string; headers: Record<string, string> } {
  if (!isProviderId(provider)) throw new Error(`no models endpoint for provider ${provider}`);
  const entry = PROVIDERS[provider];
  return { url: `${trim(baseUrl || entry.baseUrl)}${entry.modelsPath}`, headers: entry.authHeaders(key) };
}

export async function checkKey(
  provider: string,
  key: string,
  baseUrl: string,
  timeoutMs = KEY_CHECK_TIMEOUT_MS,
): Promise<KeyCheck> {
  const { url, headers } = modelsRequest(provider, key, baseUrl);
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
  } catch (e) {
    // Bun's messages are long ("ECONNREFUSED: Unable to connect. Is the computer able to access the url?"): its code says it.
    const code = (e as { code?: unknown }).code;
    const message = e instanceof Error ? (key ? e.message.replaceAll(key, "…") : e.message) : "network error";
    const detail =
      e instanceof Error && e.name === "TimeoutError"
        ? `no answer within ${timeoutMs / 1000} s`
        : typeof code === "string" && code !== ""
          ? code
          : message;
    return { kind: "unreachable", url, detail };
  }
  await res.body?.cancel().catch(() => {});
  if (res.status === 401 || res.status === 403) return { kind: "refused", url, status: res.status };
  if (res.ok) return { kind: "accepted", url };
  return { kind: "inconclusive", url, status: res.status };
}
