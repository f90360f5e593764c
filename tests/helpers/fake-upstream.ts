/**
 * A fake LLM upstream: a real `Bun.serve({ port: 0 })` on loopback that records each request and
 * replays a scripted response in the provider's wire format, written in awkward chunks (inside JSON
 * values, inside multi-byte UTF-8 characters, between `data:` and the blank line) paced so that the
 * client really reads them one by one. It can drop the connection mid-stream and it notices when a
 * client aborts — so a test can prove cancellation reached the network.
 */
export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  /** The body: a string is cut by `awkwardChunks`; chunks are sent as given. */
  body: string | Uint8Array[];
  /** Pause between chunks (on top of the one-tick pacing every chunk gets). */
  delayMs?: number;
  /** Reset the connection once this many body bytes were sent (mid-chunk if need be). */
  dropAfterBytes?: number;
  /** Stop sending, connection open, once this many body bytes were sent: a stalled upstream. */
  hangAfterBytes?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  search: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** Parsed JSON, or the raw text when it is not JSON. `any`: tests reach deep into wire shapes. */
  body: any;
  /** The client went away before the response was finished. */
  aborted: boolean;
}

export interface FakeUpstream extends AsyncDisposable {
  url: string;
  requests: RecordedRequest[];
  /** How many requests the client aborted while their response was still streaming. */
  readonly aborted: number;
  /** How many responses were stalled at `hangAfterBytes` so far (their bytes up to there written and flushed). */
  readonly stalled: number;
  /** Resolves true once a client abort has been seen, false after `timeoutMs`. */
  waitForAbort(timeoutMs?: number): Promise<boolean>;
}

const encoder = new TextEncoder();

/**
 * Splits text into byte chunks the way a re-chunking proxy might: inside every multi-byte UTF-8
 * character, right after each `data:`, between a line's end and the blank line after it, and at a
 * fixed irregular stride that lands inside JSON keys, strings and numbers. Deterministic.
 */
export function awkwardChunks(text: string): Uint8Array[] {
  const bytes = encoder.encode(text);
  const cuts = new Set<number>();
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    // A lead byte (11xxxxxx) starts a 2–4 byte character: cut after it, or after the next one for
    // 4-byte characters (emoji), so both kinds of split occur.
    if ((b & 0xc0) === 0xc0) cuts.add(i + ((b & 0xf0) === 0xf0 ? 2 : 1));
  }
  for (const m of text.matchAll(/data:|\n\n|\r\n\r\n/g)) {
    const at = encoder.encode(text.slice(0, m.index)).length;
    cuts.add(m[0] === "data:" ? at + 5 : at + m[0].length / 2);
  }
  const stride = [9, 1, 23, 3, 61, 2, 97, 5];
  for (let at = 0, i = 0; at < bytes.length; i++) cuts.add((at += stride[i % stride.length]!));
  const sorted = [...cuts].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const c of [...sorted, bytes.length]) {
    out.push(bytes.slice(from, c));
    from = c;
  }
  return out;
}

/** True when some chunk boundary falls inside a multi-byte UTF-8 character. */
export function cutsInsideCharacter(chunks: Uint8Array[]): boolean {
  return chunks.slice(1).some((c) => c.length > 0 && (c[0]! & 0xc0) === 0x80);
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/**
 * Starts the fake. `replies[n]` answers the n-th request (the last one repeats), or a function
 * picks the reply from the recorded request and its 1-based number.
 */
export function startFakeUpstream(replies: Reply[] | ((req: RecordedRequest, n: number) => Reply)): FakeUpstream {
  const requests: RecordedRequest[] = [];
  const abortWaiters = new Set<() => void>();
  const hanging = new Set<() => void>();
  let aborted = 0;
  let stalled = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // Quiet: a deliberate drop errors the response stream, which Bun would otherwise print.
    development: false,
    async fetch(req) {
      const u = new URL(req.url);
      const text = await req.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the raw text
      }
      const rec: RecordedRequest = {
        method: req.method,
        path: u.pathname,
        search: u.search,
        headers: Object.fromEntries(req.headers),
        body,
        aborted: false,
      };
      requests.push(rec);
      const reply =
        typeof replies === "function"
          ? replies(rec, requests.length)
          : (replies[requests.length - 1] ?? replies.at(-1)!);
      const chunks = typeof reply.body === "string" ? awkwardChunks(reply.body) : reply.body;
      let finished = false;
      req.signal.addEventListener("abort", () => {
        if (finished) return;
        finished = true;
        rec.aborted = true;
        aborted++;
        for (const wake of abortWaiters) wake();
      });
      let sent = 0;
      // A direct stream, so each chunk is flushed to the socket on its own.
      const stream = new ReadableStream<Uint8Array>({
        type: "direct",
        async pull(controller) {
          for (const chunk of chunks) {
            if (req.signal.aborted) return;
            let piece = chunk;
            const drop = reply.dropAfterBytes !== undefined && sent + chunk.length >= reply.dropAfterBytes;
            if (drop) piece = chunk.subarray(0, reply.dropAfterBytes! - sent);
            const hang = reply.hangAfterBytes !== undefined && sent + chunk.length >= reply.hangAfterBytes;
            if (hang) piece = chunk.subarray(0, reply.hangAfterBytes! - sent);
            if (piece.length > 0) controller.write(piece);
            await controller.flush();
            sent += piece.length;
            if (drop) {
              finished = true;
              // Erroring the body makes Bun reset the connection: the client sees ECONNRESET.
              throw new Error("fake upstream: connection dropped on purpose");
            }
            if (hang) {
              stalled++;
              // Until the client goes away or the fake is disposed.
              await new Promise<void>((resolve) => {
                hanging.add(resolve);
                req.signal.addEventListener("abort", () => resolve(), { once: true });
              });
              return;
            }
            // One tick per chunk, so the client reads each chunk on its own instead of one blob.
            await tick();
            if (reply.delayMs) await Bun.sleep(reply.delayMs);
          }
          finished = true;
          controller.close();
        },
      });
      return new Response(stream, {
        status: reply.status ?? 200,
        headers: { "content-type": "text/event-stream", ...reply.headers },
      });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    get aborted() {
      return aborted;
    },
    get stalled() {
      return stalled;
    },
    waitForAbort(timeoutMs = 2000) {
      if (aborted > 0) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          abortWaiters.delete(wake);
          resolve(aborted > 0);
        };
        const timer = setTimeout(wake, timeoutMs);
        abortWaiters.add(wake);
      });
    },
    async [Symbol.asyncDispose]() {
      for (const wake of hanging) wake();
      await server.stop(true);
    },
  };
}

/** Wraps JSON payloads as SSE: `event: <type>` lines when `named`, then `data:` and a blank line. */
export function sse(payloads: unknown[], opts: { named?: boolean; crlf?: boolean } = {}): string {
  const nl = opts.crlf ? "\r\n" : "\n";
  return payloads
    .map((p) => {
      const data = typeof p === "string" ? p : JSON.stringify(p);
      const type =
        opts.named && typeof p === "object" && p !== null && "type" in p
          ? `event: ${(p as { type: string }).type}${nl}`
          : "";
      return `${type}data: ${data}${nl}${nl}`;
    })
    .join("");
}

/** NDJSON: one JSON document per `\n`-terminated line. */
export const ndjson = (payloads: unknown[]): string => payloads.map((p) => `${JSON.stringify(p)}\n`).join("");

/**
 * A fetch that keeps the body chunks exactly as the client read them, so a test can prove the
 * awkward splits survived the network (a fake that coalesced them would test nothing).
 */
export function recordingFetch(): { fetch: typeof fetch; reads: Uint8Array[][] } {
  const reads: Uint8Array[][] = [];
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await fetch(input, init);
    if (!res.body) return res;
    const seen: Uint8Array[] = [];
    reads.push(seen);
    const tap = new TransformStream<Uint8Array, Uint8Array>({
      transform: (c, ctl) => (seen.push(c.slice()), ctl.enqueue(c)),
    });
    return new Response(res.body.pipeThrough(tap), {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  }) as typeof fetch;
  return { fetch: f, reads };
}
