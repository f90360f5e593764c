/**
 * The one JSON-RPC 2.0 client core, for any transport: it numbers requests, matches responses to
 * them, times them out and passes notifications on. The CLI runs it over a WebSocket
 * (src/cli/_client.ts), and so do the tests (tests/helpers/ws.ts); the web page keeps a browser copy.
 */
import { type ErrorCode, ExoError, UnavailableError } from "../lib/errors.ts";
import { kindOfRpc } from "./error-codes.ts";
import type { RpcErrorObject, RpcId, RpcRequest, RpcResponse } from "./jsonrpc.ts";

/**
 * A JSON-RPC error the server answered, as an ExoError: `code` is the kind its number stands for
 * in the error table (`internal` for a number the table does not know), and nothing is lost on the
 * way — `rpc` keeps the number as sent, `data` the server's data.
 */
export class RpcError extends ExoError {
  readonly rpc: number;
  constructor(error: RpcErrorObject, prefix = "") {
    const kind: ErrorCode = kindOfRpc(error.code) ?? "internal";
    super(kind, `${prefix}${error.message}`, error.data === undefined ? undefined : { data: error.data });
    this.rpc = error.code;
  }
}

export interface RpcClientOptions {
  /** Puts one request on the wire. */
  send(request: RpcRequest): void;
  /** Default wait for a response (5 s). */
  timeoutMs?: number;
  /** The first id `request` numbers with (then counting up). */
  firstId?: number;
  /** What `call` throws for an error response (default: an RpcError). */
  errorOf?: (error: RpcErrorObject) => Error;
}

export interface RpcClient {
  /** Sends a request and resolves with its response, error responses included. */
  request(method: string, params?: unknown, opts?: { id?: RpcId; timeoutMs?: number }): Promise<RpcResponse>;
  /** Sends a request and resolves with its result; an error response is thrown (`errorOf`). */
  call(method: string, params?: unknown, timeoutMs?: number): Promise<unknown>;
  /** Feeds one decoded message from the server; true when it answered a request waiting here. */
  receive(message: unknown): boolean;
  /** Receives every notification (`chat.event` …). */
  onNotification(handler: (method: string, params: unknown) => void): void;
  /** The transport is gone: everything waiting, and every later request, fails with `reason`. */
  close(reason: Error): void;
}

export function createRpcClient(opts: RpcClientOptions): RpcClient {
  const pending = new Map<RpcId, (r: RpcResponse | Error) => void>();
  let nextId = opts.firstId ?? 1;
  let closed: Error | null = null;
  let notify: (method: string, params: unknown) => void = () => {};
  const errorOf = opts.errorOf ?? ((e) => new RpcError(e));

  const client: RpcClient = {
    request(method, params, { id = nextId++, timeoutMs = opts.timeoutMs ?? 5000 } = {}) {
      if (closed) return Promise.reject(closed);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new UnavailableError(`the gateway did not answer ${method} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, (r) => {
          clearTimeout(timer);
          if (r instanceof Error) reject(r);
          else resolve(r);
        });
        opts.send({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });
      });
    },
    async call(method, params, timeoutMs) {
      const r = await client.request(method, params, timeoutMs === undefined ? {} : { timeoutMs });
      if ("error" in r) throw errorOf(r.error);
      return r.result;
    },
    receive(message) {
      if (typeof message !== "object" || message === null || Array.isArray(message)) return false;
      const m = message as { id?: RpcId; method?: unknown; params?: unknown };
      if (m.id === undefined) {
        if (typeof m.method === "string") notify(m.method, m.params);
        return false;
      }
      const settle = pending.get(m.id);
      if (!settle || !("result" in m || "error" in m)) return false;
      pending.delete(m.id);
      settle(m as RpcResponse);
      return true;
    },
    onNotification(handler) {
      notify = handler;
    },
    close(reason) {
      closed ??= reason;
      for (const settle of pending.values()) settle(reason);
      pending.clear();
    },
  };
  return client;
}
