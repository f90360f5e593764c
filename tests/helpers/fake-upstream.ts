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

/**
 * Raw TCP underneath (one request per connection, `connection: close`), so that "drop the
 * connection mid-stream" is a real reset the client sees, and an aborted client is a socket that
 * closes before the response was finished.
 */
export function startFakeUpstream(replies: Reply[] | ((req: RecordedRequest, n: number) => Reply)): FakeUpstream {
  const requests: RecordedRequest[] = [];
  const state = { aborted: 0 };
  type Conn = { buf: Buffer; handled: boolean; finished: boolean; closed: boolean };
  const respond = async (socket: Bun.Socket<Conn>, head: string, body: Buffer) => {
    const [requestLine = "", ...headerLines] = head.split("\r\n");
    const [method = "", target = "/"] = requestLine.split(" ");
    const headers: Record<string, string> = {};
    for (const l of headerLines) {
      const i = l.indexOf(":");
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const u = new URL(target, "http://fake");
    const text = body.toString("utf8");
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep raw
    }
    const rec: RecordedRequest = { method, path: u.pathname, search: u.search, headers, body: parsed };
    requests.push(rec);
    const reply = typeof replies === "function" ? replies(rec, requests.length) : (replies[requests.length - 1] ?? replies.at(-1)!);
    const chunks = typeof reply.body === "string" ? awkwardChunks(reply.body) : reply.body;
    const resHeaders = { "content-type": "text/event-stream", ...reply.headers, "transfer-encoding": "chunked", connection: "close" };
    socket.write(`HTTP/1.1 ${reply.status ?? 200} X\r\n${Object.entries(resHeaders).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n`);
    for (let i = 0; i < chunks.length; i++) {
      if (socket.data.closed) return;
      if (reply.dropAfter !== undefined && i >= reply.dropAfter) {
        socket.data.finished = true;
        socket.terminate();
        return;
      }
      const c = chunks[i]!;
      socket.write(Buffer.concat([Buffer.from(`${c.byteLength.toString(16)}\r\n`), c, Buffer.from("\r\n")]));
      if (reply.delayMs) await Bun.sleep(reply.delayMs);
    }
    socket.data.finished = true;
    socket.write("0\r\n\r\n");
    socket.end();
  };
  const server = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.data = { buf: Buffer.alloc(0), handled: false, finished: false, closed: false };
      },
      data(socket, data) {
        const d = socket.data;
        if (d.handled) return;
        d.buf = Buffer.concat([d.buf, data]);
        const end = d.buf.indexOf("\r\n\r\n");
        if (end === -1) return;
        const head = d.buf.subarray(0, end).toString("latin1");
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (d.buf.length < end + 4 + length) return;
        d.handled = true;
        void respond(socket, head, d.buf.subarray(end + 4, end + 4 + length));
      },
      close(socket) {
        const d = socket.data;
        d.closed = true;
        if (d.handled && !d.finished) state.aborted++;
      },
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    get aborted() {
      return state.aborted;
    },
    async [Symbol.asyncDispose]() {
      server.stop(true);
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
