/**
 * A fake LLM upstream: a real loopback HTTP server that records each request and replays a
 * scripted response in the provider's wire format, written in awkward chunks (inside JSON values,
 * inside multi-byte UTF-8 characters). It can drop the connection mid-stream and it notices when a
 * client aborts — so a test can prove cancellation reached the network.
 */
export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  /** The body, split into chunks by `awkwardChunks` unless given as chunks. */
  body: string | Uint8Array[];
  /** Pause between chunks. */
  delayMs?: number;
  /** Send this many chunks, then cut the connection. */
  dropAfter?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  search: string;
  headers: Record<string, string>;
  body: any;
}

export interface FakeUpstream extends AsyncDisposable {
  url: string;
  requests: RecordedRequest[];
  /** How many requests the client aborted while the response was streaming. */
  aborted: number;
}

/** Splits text into byte chunks of 1-13 bytes, cutting JSON tokens and UTF-8 characters. */
export function awkwardChunks(text: string): Uint8Array[] {
  const bytes = new TextEncoder().encode(text);
  const sizes = [1, 3, 7, 2, 13, 5, 4, 11, 6];
  const out: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    let size = sizes[i % sizes.length]!;
    // Prefer to cut inside a multi-byte character when one is near: the hardest case for decoders.
    const cont = bytes.subarray(at, at + size + 3).findIndex((b, j) => j > 0 && (b & 0xc0) === 0x80);
    if (cont > 0) size = cont;
    out.push(bytes.slice(at, at + size));
    at += size;
  }
  return out;
}

export function startFakeUpstream(replies: Reply[] | ((req: RecordedRequest, n: number) => Reply)): FakeUpstream {
  const requests: RecordedRequest[] = [];
  const state = { aborted: 0 };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const u = new URL(req.url);
      const text = await req.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep raw
      }
      const rec: RecordedRequest = { method: req.method, path: u.pathname, search: u.search, headers: Object.fromEntries(req.headers), body };
      requests.push(rec);
      const reply = typeof replies === "function" ? replies(rec, requests.length) : (replies[requests.length - 1] ?? replies.at(-1)!);
      const chunks = typeof reply.body === "string" ? awkwardChunks(reply.body) : reply.body;
      let finished = false;
      req.signal.addEventListener("abort", () => {
        if (!finished) state.aborted++;
      });
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          for (let i = 0; i < chunks.length; i++) {
            if (req.signal.aborted) return;
            if (reply.dropAfter !== undefined && i >= reply.dropAfter) {
              controller.error(new Error("connection dropped by the fake upstream"));
              return;
            }
            controller.enqueue(chunks[i]!);
            if (reply.delayMs) await Bun.sleep(reply.delayMs);
          }
          finished = true;
          controller.close();
        },
      });
      return new Response(stream, { status: reply.status ?? 200, headers: { "content-type": "text/event-stream", ...reply.headers } });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    get aborted() {
      return state.aborted;
    },
    async [Symbol.asyncDispose]() {
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
      const type = opts.named && typeof p === "object" && p !== null && "type" in p ? `event: ${(p as { type: string }).type}${nl}` : "";
      return `${type}data: ${data}${nl}${nl}`;
    })
    .join("");
}
