/**
 * The `fetch` the MCP SDK's streamable HTTP transport is given: the one way exoclaw reaches an MCP
 * server, under the same rules as a plugin's `exo_http`. The server's own scheme, host and port (from
 * its `url`) are the only destination; the name is resolved once by the host and every address is
 * checked (a non-public address only when `url` names it as an IP literal; never the gateway itself);
 * the connection goes to the checked address (TLS still verified against the name); the configured
 * headers, secrets filled in, go to that host only; redirects are never followed here. Each answer is
 * read whole under a size cap and checked to be JSON-RPC that answers the request, so a server that
 * sends too much, sends garbage, or dies mid-answer fails that request with a clear error rather than
 * leaving it to hang. The standalone GET stream is not opened (exoclaw needs no server-initiated
 * messages): GET is answered 405 without touching the network.
 */
import { createParser } from "eventsource-parser";
import { describeError, ExoError } from "../lib/errors.ts";
import {
  type AllowEntry,
  checkDestination,
  fetchPinned,
  HOST_ONLY_HEADER,
  parseAllowEntry,
  pinnedUrl,
  readCapped,
} from "../sandbox/index.ts";

export interface McpFetchOptions {
  /** The server's endpoint; its scheme, host and port are the only destination. */
  url: URL;
  /** The configured headers with secrets already filled in (sent to `url`'s host only). */
  headers: () => Readonly<Record<string, string>>;
  timeoutMs: number;
  /** Largest answer body read, in bytes. */
  maxBodyBytes: number;
  /** Name resolution (tests); dns.lookup with every address by default. */
  resolve?: (host: string) => Promise<string[]>;
  /** The gateway's own listeners: never a destination. */
  selfAddresses?: () => readonly { address: string; port: number }[];
  /** Extra CA certificates (PEM) trusted for https (tests). */
  ca?: string;
  fetch?: typeof fetch;
}

export type FetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>;

/** A request to an MCP server that was refused or failed; `message` is safe to show (secrets scrubbed by the caller). */
export class McpTransportError extends ExoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("unavailable", message, options);
  }
}

export function createMcpFetch(opts: McpFetchOptions): FetchLike {
  const base = opts.url;
  const grant = parseAllowEntry(`${base.protocol}//${base.host}`);
  const entries: AllowEntry[] = grant ? [grant] : [];
  return async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input.href);
    if (url.origin !== base.origin || url.username || url.password) {
      throw new McpTransportError(`refused a request to ${url.host}: this server may only be reached at ${base.host}`);
    }
    const method = (init.method ?? "GET").toUpperCase();
    if (method === "GET") return new Response(null, { status: 405, statusText: "Method Not Allowed" });
    const checked = await checkDestination(url, entries, {
      ...opts,
      who: { one: "an MCP client", all: "MCP servers" },
    });
    if ("error" in checked) throw new McpTransportError(checked.error);
    const connectHost = pinnedUrl(url, checked.address).host;

    const headers = new Headers(init.headers);
    for (const k of [...headers.keys()]) if (HOST_ONLY_HEADER.test(k)) headers.delete(k);
    for (const [k, v] of Object.entries(opts.headers())) headers.set(k, v);
    const send = async (signal: AbortSignal): Promise<Response> => {
      let res: Response;
      try {
        res = await fetchPinned(url, checked.address, {
          method,
          headers: Object.fromEntries(headers),
          body: init.body,
          signal,
          ca: opts.ca,
          fetch: opts.fetch,
        });
      } catch (e) {
        throw failure(e, opts.timeoutMs, connectHost, url.host);
      }
      const outHeaders = new Headers(res.headers);
      outHeaders.delete("content-length");
      outHeaders.delete("content-encoding");
      if (res.status >= 300 && res.status < 400) {
        // Handed back unfollowed: the SDK follows a same-origin redirect by calling this function again.
        await res.body?.cancel().catch(() => {});
        return new Response(null, { status: res.status, statusText: res.statusText, headers: outHeaders });
      }
      let body: Uint8Array | null;
      try {
        body = await readCapped(res, opts.maxBodyBytes);
      } catch (e) {
        throw failure(e, opts.timeoutMs, connectHost, url.host, true);
      }
      if (!body) throw new McpTransportError(`the server's answer is larger than ${opts.maxBodyBytes} bytes; refused`);
      if (method === "POST" && res.ok)
        checkAnswer(typeof init.body === "string" ? init.body : "", res.headers.get("content-type"), body);
      return new Response(body.byteLength > 0 ? body : null, {
        status: res.status,
        statusText: res.statusText,
        headers: outHeaders,
      });
    };
    // The request's own signal, not AbortSignal.any([timeout, init.signal]): one that depends on the
    // transport's lifelong signal is kept alive with its listeners (the DOM rule), one per request.
    const own = new AbortController();
    const outer = init.signal ?? null;
    const onOuter = () => own.abort(outer?.reason);
    const timer = setTimeout(() => own.abort(new DOMException("timed out", "TimeoutError")), opts.timeoutMs);
    if (outer?.aborted) onOuter();
    else outer?.addEventListener("abort", onOuter, { once: true });
    try {
      return await send(own.signal);
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onOuter);
    }
  };
}

function failure(
  e: unknown,
  timeoutMs: number,
  connectHost: string,
  host: string,
  midAnswer = false,
): McpTransportError {
  const name = (e as Error)?.name;
  if (name === "TimeoutError") return new McpTransportError(`no answer within ${timeoutMs} ms`);
  if (name === "AbortError") return new McpTransportError("request cancelled");
  // Bun appends advice about its own fetch options; the reason is the first sentence.
  const why = describeError(e).replace(/\s*For more information, pass `verbose: true`.*$/s, "");
  const text = midAnswer ? `the connection broke mid-answer: ${why}` : `cannot reach ${host}: ${why}`;
  return new McpTransportError(text.split(connectHost).join(host), { cause: e });
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** Throws unless `body` is well-formed JSON-RPC that answers every request `requestBody` carried. */
function checkAnswer(requestBody: string, contentType: string | null, body: Uint8Array): void {
  let sent: unknown;
  try {
    sent = JSON.parse(requestBody);
  } catch {
    return;
  }
  const asked = new Set(
    (Array.isArray(sent) ? sent : [sent])
      .filter((m) => isObject(m) && typeof m.method === "string" && m.id !== undefined)
      .map((m) => JSON.stringify((m as { id: unknown }).id)),
  );
  if (asked.size === 0) return;
  const media = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  const text = new TextDecoder().decode(body);
  const messages: unknown[] = [];
  const parse = (data: string) => {
    let m: unknown;
    try {
      m = JSON.parse(data);
    } catch {
      throw new McpTransportError("the server answered with invalid JSON-RPC (not JSON)");
    }
    messages.push(...(Array.isArray(m) ? m : [m]));
  };
  if (media === "application/json") parse(text);
  else if (media === "text/event-stream") {
    const parser = createParser({
      onEvent: (ev) => void ((ev.event === undefined || ev.event === "message") && ev.data !== "" && parse(ev.data)),
    });
    parser.feed(text);
    parser.reset({ consume: true });
  } else
    throw new McpTransportError(
      `the server answered with content type ${JSON.stringify(media || "(none)")}, not JSON-RPC`,
    );
  for (const m of messages) {
    if (!isObject(m) || m.jsonrpc !== "2.0")
      throw new McpTransportError("the server answered with invalid JSON-RPC (not a JSON-RPC 2.0 message)");
    if (m.method === undefined && m.id !== undefined && ("result" in m || "error" in m))
      asked.delete(JSON.stringify(m.id));
  }
  if (asked.size > 0) throw new McpTransportError("the server ended its answer without a response to the request");
}
