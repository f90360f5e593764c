/**
 * One WebSocket connection speaking JSON-RPC 2.0 (SPEC §5), independent of the socket library:
 * the server feeds it frames and gives it `send`/`close`. It owns the auth state machine, the
 * pre-auth frame cap, the in-flight limit, and dispatch to the method table.
 */
import * as v from "valibot";
import type { Authenticator } from "../auth/index.ts";
import { AuthError, ExoError, isExoError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { decodeFrame, type Encoding, encodeFrame } from "../protocol/codec.ts";
import { RPC } from "../protocol/error-codes.ts";
import {
  errorResponse,
  isNotification,
  type ParsedEntry,
  parseMessage,
  resultResponse,
  type RpcId,
  type RpcRequest,
  type RpcResponse,
  toErrorResponse,
} from "../protocol/jsonrpc.ts";
import { type MethodContext, type MethodTable, parseParams } from "../protocol/methods.ts";

export const CLOSE_UNAUTHORIZED = 4001;
/** Too many unauthenticated sockets (per address or in all): RFC 6455 "try again later". */
export const CLOSE_TRY_AGAIN_LATER = 1013;
export const PRE_AUTH_MAX_BYTES = 64 * 1024;

export const ConnectParams = v.strictObject({
  token: v.optional(v.string()),
  client: v.optional(v.object({ name: v.optional(v.string()), version: v.optional(v.string()) })),
});

/** What a connection needs from the gateway around it. */
export interface ConnectionDeps {
  readonly methods: MethodTable;
  readonly log: Logger;
  readonly maxPayloadBytes: number;
  readonly maxInFlight: number;
  /** The gateway's one token check; `auth.required`: the client must authenticate before calling anything but `connect`. */
  readonly auth: Authenticator;
  /** The `connect` result (server info, protocol, methods, limits). */
  readonly hello: () => unknown;
  /** Told of every request's method and outcome (metrics). */
  readonly observe?: (method: string, outcome: "ok" | "error") => void;
  /** Told once when a socket that opened unauthenticated authenticates with `connect`. */
  readonly onAuthenticated?: () => void;
}

export interface SocketLike {
  send(frame: string | Uint8Array): void;
  close(code: number, reason: string): void;
}

export class RpcConnection {
  readonly id: string;
  readonly remoteAddress: string;
  private authed: boolean;
  private closed = false;
  private inFlight = 0;
  private readonly abort = new AbortController();
  private clientInfo: { name?: string; version?: string } | undefined;

  constructor(
    private readonly deps: ConnectionDeps,
    private readonly socket: SocketLike,
    opts: { id: string; remoteAddress: string; authenticated: boolean },
  ) {
    this.id = opts.id;
    this.remoteAddress = opts.remoteAddress;
    this.authed = opts.authenticated || !deps.auth.required;
  }

  get authenticated(): boolean {
    return this.authed;
  }

  get client(): { name?: string; version?: string } | undefined {
    return this.clientInfo;
  }

  /** Called when auth did not complete in time. */
  expireAuth(): void {
    if (!this.authed) this.close(CLOSE_UNAUTHORIZED, "authentication timeout");
  }

  /** Called by the server when the socket closed; aborts the work of in-flight requests. */
  onClosed(): void {
    this.closed = true;
    this.abort.abort();
  }

  /** Handles one inbound frame. Never throws. */
  handleFrame(data: string | Uint8Array): void {
    const size = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
    const encoding: Encoding = typeof data === "string" ? "json" : "msgpack";
    if (!this.authed && size > PRE_AUTH_MAX_BYTES) {
      this.reply(
        errorResponse(
          null,
          RPC.PAYLOAD_TOO_LARGE,
          `frames before authentication are limited to ${PRE_AUTH_MAX_BYTES} bytes`,
          { limit: PRE_AUTH_MAX_BYTES },
        ),
        encoding,
      );
      this.close(CLOSE_UNAUTHORIZED, "frame too large before authentication");
      return;
    }
    if (size > this.deps.maxPayloadBytes) {
      this.reply(
        errorResponse(
          null,
          RPC.PAYLOAD_TOO_LARGE,
          `frame of ${size} bytes exceeds max_payload_bytes (${this.deps.maxPayloadBytes})`,
          { limit: this.deps.maxPayloadBytes },
        ),
        encoding,
      );
      if (!this.authed) this.close(CLOSE_UNAUTHORIZED, "frame too large before authentication");
      return;
    }
    let value: unknown;
    try {
      value = decodeFrame(data).value;
    } catch (e) {
      this.reply(toErrorResponse(null, e), encoding);
      if (!this.authed) this.close(CLOSE_UNAUTHORIZED, "unauthorized");
      return;
    }
    const parsed = parseMessage(value);
    if ("error" in parsed) {
      this.reply(parsed.error, encoding);
      // An empty or oversized batch is no connect either: before auth it ends the socket like any other frame.
      if (!this.authed) this.close(CLOSE_UNAUTHORIZED, "unauthorized");
      return;
    }
    if (!this.authed) {
      this.handlePreAuth(parsed.batch, parsed.entries, encoding);
      return;
    }
    if (!parsed.batch) {
      const entry = parsed.entries[0]!;
      if (entry.kind === "invalid") this.reply(entry.response, encoding);
      else void this.run(entry.request, encoding).then((r) => r && this.reply(r, encoding));
      return;
    }
    void Promise.all(
      parsed.entries.map((e) => (e.kind === "invalid" ? e.response : this.run(e.request, encoding))),
    ).then((responses) => {
      const out = responses.filter((r): r is RpcResponse => r !== null);
      if (out.length > 0) this.reply(out, encoding);
    });
  }

  private handlePreAuth(batch: boolean, entries: ParsedEntry[], encoding: Encoding): void {
    const first = entries[0];
    if (batch || entries.length !== 1 || !first || first.kind !== "request" || first.request.method !== "connect") {
      const id = first?.kind === "request" && !batch ? (first.request.id ?? null) : null;
      this.reply(errorResponse(id, RPC.UNAUTHORIZED, "unauthorized: authenticate with connect first"), encoding);
      this.close(CLOSE_UNAUTHORIZED, "unauthorized");
      return;
    }
    const req = first.request;
    const id = req.id ?? null;
    let params: v.InferOutput<typeof ConnectParams> | undefined;
    let invalid: unknown;
    try {
      params = parseParams(ConnectParams, req.params);
    } catch (e) {
      invalid = e;
    }
    // No token at all counts as a wrong one here: the socket exists only to authenticate.
    const verdict = this.deps.auth.check(params ? (params.token ?? "") : null, this.remoteAddress);
    if (verdict === "limited") {
      const seconds = Math.ceil(this.deps.auth.retryAfter(this.remoteAddress) / 1000);
      this.reply(
        toErrorResponse(
          id,
          new ExoError("rate_limited", `too many failed attempts; retry in ${seconds} s`, {
            data: { retry_after_s: seconds },
          }),
        ),
        encoding,
      );
      this.close(CLOSE_UNAUTHORIZED, "rate limited");
      return;
    }
    if (!params) {
      this.reply(toErrorResponse(id, invalid), encoding);
      this.close(CLOSE_UNAUTHORIZED, "unauthorized");
      return;
    }
    if (verdict !== "ok") {
      this.deps.log.warn("auth failed", { conn: this.id, remote: this.remoteAddress, via: "connect" });
      this.reply(toErrorResponse(id, new AuthError("unauthorized: invalid token")), encoding);
      this.close(CLOSE_UNAUTHORIZED, "unauthorized");
      return;
    }
    this.authed = true;
    this.deps.onAuthenticated?.();
    this.clientInfo = params.client;
    this.reply(resultResponse(id, this.deps.hello()), encoding);
  }

  /** Runs one request; resolves to its response, or null for a notification. */
  private async run(req: RpcRequest, encoding: Encoding): Promise<RpcResponse | null> {
    const id: RpcId = req.id ?? null;
    const silent = isNotification(req);
    if (this.inFlight >= this.deps.maxInFlight) {
      return silent
        ? null
        : errorResponse(
            id,
            RPC.RATE_LIMITED,
            `too many requests in flight on this connection (max ${this.deps.maxInFlight})`,
          );
    }
    this.inFlight++;
    // Unknown method names are not echoed into metrics labels (their number is unbounded).
    const label = req.method === "connect" || this.deps.methods.has(req.method) ? req.method : "(unknown)";
    try {
      const result = await this.dispatch(req, encoding);
      this.deps.observe?.(label, "ok");
      return silent ? null : resultResponse(id, result);
    } catch (e) {
      this.deps.observe?.(label, "error");
      if (!isExoError(e)) this.deps.log.error("method failed", { method: req.method, conn: this.id, error: e });
      return silent ? null : toErrorResponse(id, e);
    } finally {
      this.inFlight--;
    }
  }

  private async dispatch(req: RpcRequest, encoding: Encoding): Promise<unknown> {
    if (req.method === "connect") {
      const params = parseParams(ConnectParams, req.params);
      const verdict = params.token === undefined ? "ok" : this.deps.auth.check(params.token, this.remoteAddress);
      if (verdict === "limited")
        throw new ExoError("rate_limited", "too many failed attempts", {
          data: { retry_after_s: Math.ceil(this.deps.auth.retryAfter(this.remoteAddress) / 1000) },
        });
      if (verdict !== "ok") throw new AuthError("unauthorized: invalid token");
      this.clientInfo = params.client ?? this.clientInfo;
      return this.deps.hello();
    }
    const method = this.deps.methods.get(req.method);
    if (!method) throw new ExoError("method_not_found", `method not found: ${req.method}`);
    const params = method.params ? parseParams(method.params, req.params) : undefined;
    const ctx: MethodContext = {
      connectionId: this.id,
      requestId: req.id ?? null,
      remoteAddress: this.remoteAddress,
      signal: this.abort.signal,
      notify: (m, p) => this.send({ jsonrpc: "2.0", method: m, params: p }, encoding),
    };
    return await method.handle(params as never, ctx);
  }

  private reply(response: RpcResponse | RpcResponse[], encoding: Encoding): void {
    this.send(response, encoding);
  }

  private send(message: unknown, encoding: Encoding): void {
    if (this.closed) return;
    try {
      this.socket.send(encodeFrame(message, encoding));
    } catch (e) {
      this.deps.log.warn("send failed", { conn: this.id, error: e });
    }
  }

  private close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.socket.close(code, reason);
  }
}
