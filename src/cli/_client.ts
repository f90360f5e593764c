/**
 * A small JSON-RPC client over WebSocket for CLI commands that talk to a running gateway.
 * Errors are ExoErrors with a message a user can act on.
 */
import { AuthError, ExoError, UnavailableError } from "../lib/errors.ts";
import { createRpcClient, RpcError } from "../protocol/client.ts";
import { ERROR_TABLE } from "../protocol/error-codes.ts";
import type { Config } from "../config/index.ts";

export interface GatewayClient {
  /** `timeoutMs` overrides the connection's default (a chat turn may take minutes). */
  call(method: string, params?: unknown, timeoutMs?: number): Promise<unknown>;
  /** Receives every notification (`chat.event` …). */
  onNotification(handler: (method: string, params: unknown) => void): void;
  /** Called once when the socket closes, whoever closed it (4001: the gateway refused the token). */
  onClose(handler: (code: number) => void): void;
  close(): void;
}

/** The WebSocket URL of the configured gateway (a wildcard bind is reached over loopback). */
export function gatewayUrl(config: Config, flags: { url?: string; port?: number }): string {
  if (flags.url) return flags.url;
  let host = config.gateway.bind;
  if (host === "0.0.0.0") host = "127.0.0.1";
  if (host === "::" || host === "[::]") host = "::1";
  if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
  const scheme = config.gateway.tls_cert ? "wss" : "ws";
  return `${scheme}://${host}:${flags.port ?? config.gateway.port}/ws`;
}

export async function connectGateway(url: string, token: string, timeoutMs = 5000): Promise<GatewayClient> {
  let ws: WebSocket;
  try {
    ws = new WebSocket(url, token ? { headers: { authorization: `Bearer ${token}` } } : undefined);
  } catch (e) {
    throw new UnavailableError(`invalid gateway URL ${url}`, { cause: e });
  }
  let closed: (code: number) => void = () => {};
  const rpc = createRpcClient({
    send: (request) => ws.send(JSON.stringify(request)),
    timeoutMs,
    // The server's error as sent (kind, number and data kept), said to come from the gateway.
    errorOf: (error) =>
      error.code === ERROR_TABLE.unauthorized.rpc && !token
        ? new AuthError(`the gateway at ${url} requires a token: pass --token or set EXOCLAW_TOKEN`)
        : new RpcError(error, "gateway: "),
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.close();
      reject(new UnavailableError(`no gateway answered at ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve();
    };
    ws.onerror = (ev) => {
      clearTimeout(timer);
      const msg = (ev as ErrorEvent).message ?? "";
      if (/\b401\b/.test(msg)) reject(new AuthError(`the gateway at ${url} refused the token`));
      else if (/\b429\b/.test(msg))
        reject(new ExoError("rate_limited", `the gateway at ${url} is rate limiting this address; retry later`));
      else if (/\b403\b/.test(msg))
        reject(new AuthError(`the gateway at ${url} refused this client (origin or host not allowed)`));
      else if (/TLS|certificate|SSL/i.test(msg)) {
        // A gateway answered, but its certificate is not trusted here (self-signed, or for another name).
        const why = /TLS handshake failed: (.*)$/.exec(msg)?.[1] ?? msg;
        reject(
          new UnavailableError(
            `the gateway at ${url} answered, but its TLS certificate is not trusted (${why}): use a certificate this machine trusts, or add it with NODE_EXTRA_CA_CERTS=<file>`,
          ),
        );
      } else reject(new UnavailableError(`no gateway is answering at ${url} (is \`exoclaw gateway\` running?)`));
    };
  });
  ws.onmessage = (ev) => {
    let message: unknown;
    try {
      message = JSON.parse(String(ev.data));
    } catch {
      return; // not JSON: nothing of ours
    }
    rpc.receive(message);
  };
  ws.onclose = (ev) => {
    rpc.close(
      new UnavailableError(
        ev.code === 4001
          ? "the gateway closed the connection: unauthorized"
          : `the gateway closed the connection (${ev.code})`,
      ),
    );
    closed(ev.code);
  };
  return {
    call: (method, params, callTimeoutMs) => rpc.call(method, params, callTimeoutMs),
    onNotification: (handler) => rpc.onNotification(handler),
    onClose: (handler) => {
      closed = handler;
    },
    close: () => ws.close(),
  };
}
