/**
 * A raw WebSocket test client: sends exactly the frames a test gives it and records everything
 * the server sends back, decoded, plus the close code. The only protocol help is `call`, which is
 * the CLI's own JSON-RPC client core (src/protocol/client.ts) answering with the raw response.
 */
import { createRpcClient } from "../../src/protocol/client.ts";
import { packMsgpack, unpackMsgpack } from "../../src/protocol/codec.ts";

export interface Received {
  binary: boolean;
  value: unknown;
}

export interface TestSocket extends AsyncDisposable {
  ws: WebSocket;
  received: Received[];
  sendJson(value: unknown): void;
  sendText(text: string): void;
  sendMsgpack(value: unknown): void;
  /** Resolves with the first received message (from now on or already buffered) that matches. */
  next(match?: (r: Received) => boolean, timeoutMs?: number): Promise<Received>;
  /** Sends one JSON request and resolves with the response carrying its id. */
  call(method: string, params?: unknown, id?: number | string): Promise<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
}

export type OpenResult = { ok: true; socket: TestSocket } | { ok: false; error: string };

let autoId = 1_000_000;

export function tryOpenSocket(url: string, init?: { headers?: Record<string, string> }): Promise<OpenResult> {
  const ws = new WebSocket(url, init as never);
  ws.binaryType = "arraybuffer";
  const received: Received[] = [];
  const waiters: { match: (r: Received) => boolean; resolve: (r: Received) => void }[] = [];
  // Weak: a message the test dropped from `received` is not kept alive by having been taken.
  let taken = new WeakSet<Received>();
  const rpc = createRpcClient({ send: (request) => ws.send(JSON.stringify(request)) });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (ev) => {
      rpc.close(
        new Error(`socket closed (${ev.code} ${ev.reason}); got ${JSON.stringify(received.map((r) => r.value))}`),
      );
      resolve({ code: ev.code, reason: ev.reason });
    });
  });
  ws.addEventListener("message", (ev) => {
    const binary = typeof ev.data !== "string";
    const value = binary ? unpackMsgpack(new Uint8Array(ev.data as ArrayBuffer)) : JSON.parse(ev.data as string);
    const r: Received = { binary, value };
    received.push(r);
    // The answer to a `call` goes to it, never to a `next` waiting for something else.
    if (!binary && rpc.receive(value)) {
      taken.add(r);
      return;
    }
    const i = waiters.findIndex((w) => w.match(r));
    if (i !== -1) {
      taken.add(r);
      waiters.splice(i, 1)[0]!.resolve(r);
    }
  });
  const socket: TestSocket = {
    ws,
    received,
    closed,
    sendJson: (v) => ws.send(JSON.stringify(v)),
    sendText: (t) => ws.send(t),
    sendMsgpack: (v) => ws.send(packMsgpack(v)),
    next(match = () => true, timeoutMs = 5000) {
      const buffered = received.find((r) => !taken.has(r) && match(r));
      if (buffered) {
        taken.add(buffered);
        return Promise.resolve(buffered);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no matching message within ${timeoutMs} ms; got ${JSON.stringify(received.map((r) => r.value))}`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({ match, resolve: (r) => (clearTimeout(timer), resolve(r)) });
      });
    },
    async call(method, params, id = autoId++) {
      const r = await rpc.request(method, params, { id }).catch((e: Error) => {
        throw new Error(`${e.message}; got ${JSON.stringify(received.map((m) => m.value))}`);
      });
      return r as unknown as Record<string, unknown>;
    },
    async [Symbol.asyncDispose]() {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close();
      await Promise.race([closed, Bun.sleep(1000)]);
      taken = new WeakSet();
    },
  };
  return new Promise((resolve) => {
    ws.addEventListener("open", () => resolve({ ok: true, socket }), { once: true });
    ws.addEventListener("error", (ev) => resolve({ ok: false, error: (ev as ErrorEvent).message ?? "error" }), {
      once: true,
    });
  });
}

export async function openSocket(url: string, init?: { headers?: Record<string, string> }): Promise<TestSocket> {
  const r = await tryOpenSocket(url, init);
  if (!r.ok) throw new Error(`websocket did not open: ${r.error}`);
  return r.socket;
}
