/**
 * The gateway: one Bun.serve port carrying HTTP (Hono) and Bun-native WebSockets at /ws.
 * Exposure rules are enforced here, before any protocol work: loopback unless a token is set,
 * Host and Origin checks, bearer auth on upgrade, body and frame limits.
 */
import type { Server, ServerWebSocket } from "bun";
import { Hono } from "hono";
import { readFileSync } from "node:fs";
import { bodyLimit } from "hono/body-limit";
import {
  type Authenticator,
  type AuthVerdict,
  bearerToken,
  createAuthenticator,
  refusalOf,
  type ExposurePolicy,
  type FailureLimiterOptions,
  hostAccess,
  isLoopback,
  isOriginAllowed,
} from "../auth/index.ts";
import type { Config } from "../config/index.ts";
import { ConfigError, describeError, ExoError, UnavailableError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { createMetrics, type Metrics } from "../lib/metrics.ts";
import { VERSION } from "../lib/version.ts";
import { httpErrorResponse } from "../protocol/error-codes.ts";
import { asOpenAIError } from "./openai-compat.ts";
import type { Method } from "../protocol/methods.ts";
import { CLOSE_TRY_AGAIN_LATER, RpcConnection } from "./connection.ts";
import { PAGE_CSP, PAGE_HTML, PAGE_JS } from "./web/page.ts";
import { coreMethods } from "./core-methods.ts";

export interface GatewayOptions {
  config: Config;
  log: Logger;
  /** Methods contributed by other modules (chat.*, session.* …), merged over the core ones. */
  methods?: ReadonlyMap<string, Method<never>>;
  /** Close unauthenticated sockets after this long (SPEC: 10 s). */
  authTimeoutMs?: number;
  limiter?: FailureLimiterOptions;
  /** The token check every surface uses (default: one over `gateway.token` and `limiter`); tests pass their own to watch it. */
  authenticator?: Authenticator;
  /** Requests in flight per socket before -32005. */
  maxInFlight?: number;
  /** Facts merged into the `status` result (store, plugins, bus …). */
  statusExtra?: () => Promise<Record<string, unknown>>;
  /** Where counters go; /metrics renders it. */
  metrics?: Metrics;
  /** `/ready`: whether the gateway can do its work (store reachable …), with details. */
  readiness?: () => Promise<{ ready: boolean; [k: string]: unknown }>;
  /** More HTTP routes (the OpenAI-compatible endpoint, webhooks), mounted after the core ones. */
  routes?: (app: Hono, auth: RouteAuth) => void;
  /**
   * Seconds an HTTP connection may stay silent before it is closed (Bun's idleTimeout, default 10);
   * tests shrink it. A request held open (RouteAuth.holdOpen) is exempt.
   */
  idleTimeoutS?: number;
  /** Share the port with the other gateway workers (SO_REUSEPORT; `--workers N`, ./supervisor.ts). */
  reusePort?: boolean;
}

/** What extra routes get from the gateway to authenticate HTTP requests the same way as sockets. */
export interface RouteAuth {
  checkBearer(header: string | null | undefined, remote: string): AuthVerdict;
  /**
   * The whole request as a caller of the gateway's own authority: its bearer token, and — on a
   * gateway without a token — a loopback Host (the public host of `public_url` carries no authority).
   */
  checkRequest(req: Request): AuthVerdict;
  remoteOf(req: Request): string;
  /**
   * Exempts an authenticated request from the idle timeout: its answer may rightly take long (a turn
   * whose tool call waits for the operator's approval, a slow model) with nothing sent meanwhile.
   * Call it only after the request's token was checked, so a stranger cannot hold connections open.
   */
  holdOpen(req: Request): void;
}

export interface Gateway {
  readonly url: string;
  readonly port: number;
  /** Open WebSocket connections now. */
  connections(): number;
  /** Stops accepting, waits up to `drainMs` (default 10 s) for requests in flight, then closes everything. */
  stop(drainMs?: number): Promise<void>;
}

interface SocketData {
  /** Frames waiting for the end of this event-loop turn, sent together in one corked write. */
  outbox: (string | Uint8Array)[];
  conn: RpcConnection | null;
  authenticated: boolean;
  remoteAddress: string;
  timer: ReturnType<typeof setTimeout> | null;
  /** Counted among the unauthenticated sockets (released once, on auth or close). */
  pending: boolean;
}

type Env = { Bindings: { server: Server<SocketData> } };

function flushFrames(ws: ServerWebSocket<SocketData>): void {
  const frames = ws.data.outbox;
  if (frames.length === 0) return;
  ws.data.outbox = [];
  ws.cork(() => {
    for (const f of frames) ws.send(f);
  });
}

/**
 * Replies and chat events produced in one event-loop turn leave in one corked write rather than a
 * syscall each (a streamed turn emits many small frames); order is kept.
 */
function queueFrame(ws: ServerWebSocket<SocketData>, frame: string | Uint8Array): void {
  if (ws.data.outbox.push(frame) === 1) setImmediate(() => flushFrames(ws));
}

/** Throws ConfigError when the exposure posture is unsafe (non-loopback bind without a token). */
export function assertSafeExposure(config: Config): void {
  if (!isLoopback(config.gateway.bind) && config.gateway.token === "") {
    throw new ConfigError(
      `refusing to bind ${config.gateway.bind}: a non-loopback address needs a token (--token or EXOCLAW_TOKEN)`,
    );
  }
  if (config.gateway.mcp && config.gateway.token === "") {
    throw new ConfigError(
      "gateway.mcp = true needs a token (--token or EXOCLAW_TOKEN): /mcp runs agent turns at your cost, and an MCP client must present the token as a Bearer",
    );
  }
}

function readTls(certPath: string, keyPath: string): { cert: string; key: string } {
  const read = (key: string, path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (e) {
      throw new ConfigError(`gateway.${key}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`);
    }
  };
  return { cert: read("tls_cert", certPath), key: read("tls_key", keyPath) };
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const { config, log } = opts;
  const gw = config.gateway;
  assertSafeExposure(config);

  const tokenRequired = gw.token !== "";
  const tls = gw.tls_cert !== "" && gw.tls_key !== "";
  const policy: ExposurePolicy = {
    bind: gw.bind,
    tls,
    tokenRequired,
    allowedOrigins: gw.allowed_origins,
    publicUrl: gw.public_url,
  };
  const auth = opts.authenticator ?? createAuthenticator(gw.token, opts.limiter);
  const authTimeoutMs = opts.authTimeoutMs ?? 10_000;
  const sockets = new Set<ServerWebSocket<SocketData>>();
  const metrics = opts.metrics ?? createMetrics();
  const startedAt = Date.now();
  metrics.gauge("exoclaw_ws_connections", "Open WebSocket connections.", () => sockets.size);
  metrics.gauge("exoclaw_uptime_seconds", "Seconds since the gateway started.", () =>
    Math.round((Date.now() - startedAt) / 1000),
  );
  metrics.gauge("exoclaw_process_resident_memory_bytes", "Resident memory of the gateway process.", () =>
    process.memoryUsage.rss(),
  );
  metrics.help("exoclaw_rpc_requests_total", "JSON-RPC requests by method and outcome.", "counter");
  const unauthenticated = unauthenticatedSockets(gw, metrics);
  let nextId = 1;
  let server: Server<SocketData> | undefined;

  const methods = new Map<string, Method<never>>([
    ...coreMethods({
      startedAt: Date.now(),
      bind: gw.bind,
      port: () => server?.port ?? gw.port,
      url: () => server?.url.href ?? "",
      tokenRequired,
      tls,
      connections: () => sockets.size,
      configFile: config.file,
      ...(opts.statusExtra && { extra: opts.statusExtra }),
    }),
    ...(opts.methods ?? []),
  ]);
  const hello = () => ({
    server: { name: "exoclaw", version: VERSION },
    protocol: 1,
    methods: ["connect", ...methods.keys()],
    limits: { max_payload_bytes: gw.max_payload_bytes },
  });

  const app = new Hono<Env>();
  let lastHostWarning = 0;
  app.use("*", async (c, next) => {
    if (c.req.path !== "/health") {
      const host = c.req.header("host") ?? null;
      const access = hostAccess(policy, host);
      if (access === "webhooks" && !c.req.path.startsWith("/webhook/")) {
        const message =
          `on its public host ${host} a gateway without a token answers only /webhook/ (platforms sign those): ` +
          "start it with a token (--token or EXOCLAW_TOKEN) to reach the page, /ws or /v1 through the proxy";
        throw new ExoError("forbidden", message);
      }
      if (access === "none") {
        // Behind a reverse proxy this is the first thing an operator meets: say why, and what to do.
        // At most one line a minute: a stranger spraying Host names must not flood the log.
        if (Date.now() - lastHostWarning > 60_000) {
          lastHostWarning = Date.now();
          log.warn("request for a foreign Host refused (DNS-rebinding guard of a gateway without a token)", {
            host,
            path: c.req.path,
          });
        }
        const message =
          `host ${host ?? "(none)"} not allowed: a gateway without a token answers only loopback host names (a guard against DNS rebinding). ` +
          "Behind a reverse proxy, set [gateway] public_url to the address the proxy serves (webhooks only, without a token), " +
          "or start it with a token (--token or EXOCLAW_TOKEN)";
        throw new ExoError("forbidden", message);
      }
      // A page on another origin can still *send* a simple POST to loopback (CORS only hides the
      // answer), so every request that carries a foreign Origin is refused before it does anything.
      if (!isOriginAllowed(policy, c.req.header("origin") ?? null, host)) {
        log.warn("cross-origin request refused", { origin: c.req.header("origin"), path: c.req.path });
        throw new ExoError("forbidden", "origin not allowed");
      }
    }
    await next();
  });
  // The buffered request stands in for the one Bun gave; requestIP and timeout need Bun's own.
  const originals = new WeakMap<Request, Request>();
  app.use(
    "*",
    bodyDeadline(gw.body_timeout_ms, gw.max_payload_bytes, (next, raw) =>
      originals.set(next, originals.get(raw) ?? raw),
    ),
  );
  app.use(
    "*",
    bodyLimit({
      maxSize: gw.max_payload_bytes,
      onError: () => {
        throw new ExoError("payload_too_large", `body exceeds max_payload_bytes (${gw.max_payload_bytes})`);
      },
    }),
  );
  app.get("/health", (c) => c.json({ status: "ok", version: VERSION }));
  const pageHeaders = {
    "content-security-policy": PAGE_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  };
  app.get("/", (c) => c.html(PAGE_HTML, 200, pageHeaders));
  app.get("/app.js", (c) => c.body(PAGE_JS, 200, { ...pageHeaders, "content-type": "text/javascript; charset=utf-8" }));
  const verifyBearer = (header: string | null | undefined, remote: string): AuthVerdict =>
    auth.check(bearerToken(header), remote);
  const remoteOf = (req: Request) =>
    clientAddress(
      server?.requestIP(originals.get(req) ?? req)?.address ?? "unknown",
      req.headers.get("x-forwarded-for"),
      gw.trusted_proxies,
    );
  /** Throws the refusal when the request does not carry the token. */
  const requireToken = (req: Request) => {
    const remote = remoteOf(req);
    const verdict = verifyBearer(req.headers.get("authorization"), remote);
    if (verdict !== "ok") throw refusalOf(verdict, auth.retryAfter(remote));
  };
  app.get("/ready", async (c) => {
    requireToken(c.req.raw);
    const r = opts.readiness
      ? await opts.readiness().catch((e: unknown) => ({ ready: false, error: describeError(e) }))
      : { ready: true };
    return c.json({ status: r.ready ? "ready" : "not ready", ...r }, r.ready ? 200 : 503);
  });
  app.get("/metrics", (c) => {
    requireToken(c.req.raw);
    return c.text(metrics.render(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });
  app.get("/ws", (c) => {
    const req = c.req.raw;
    const srv = c.env.server;
    const remoteAddress = remoteOf(req);
    if (!isOriginAllowed(policy, req.headers.get("origin"), req.headers.get("host"))) {
      log.warn("websocket origin refused", { origin: req.headers.get("origin"), remote: remoteAddress });
      throw new ExoError("forbidden", "origin not allowed");
    }
    // Without a Bearer the socket opens unauthenticated and must send `connect {token}` first.
    const bearer = bearerToken(req.headers.get("authorization"));
    const verdict = bearer === null ? "missing" : auth.check(bearer, remoteAddress);
    if (verdict === "limited" || verdict === "wrong") {
      if (verdict === "wrong") log.warn("auth failed", { remote: remoteAddress, via: "bearer" });
      throw refusalOf(verdict, auth.retryAfter(remoteAddress));
    }
    const authenticated = verdict === "ok";
    const data: SocketData = { outbox: [], conn: null, authenticated, remoteAddress, timer: null, pending: false };
    if (srv.upgrade(req, { data })) return new Response(null);
    throw new ExoError("upgrade_required", "expected a WebSocket upgrade");
  });
  const checkRequest = (req: Request) =>
    !tokenRequired && hostAccess(policy, req.headers.get("host")) !== "all"
      ? ("missing" as const)
      : verifyBearer(req.headers.get("authorization"), remoteOf(req));
  // The turn itself is bounded (the approval timeout, the model's idle limit, tool rounds); the
  // request's end (client gone) still cancels it.
  const holdOpen = (req: Request) => server?.timeout(originals.get(req) ?? req, 0);
  opts.routes?.(app as unknown as Hono, { checkBearer: verifyBearer, checkRequest, remoteOf, holdOpen });
  // Under /v1 (OpenAI's API) every error is in OpenAI's body shape, the rest in the gateway's own.
  const shaped = (c: { req: { path: string } }, r: Response) => (c.req.path.startsWith("/v1/") ? asOpenAIError(r) : r);
  app.notFound((c) =>
    shaped(c, httpErrorResponse(new ExoError("not_found", `no route for ${c.req.method} ${c.req.path}`))),
  );
  // The one HTTP error path: whatever a route or middleware throws is answered from the error table.
  app.onError((e, c) => {
    const answer = httpErrorResponse(e);
    if (answer.status >= 500) log.error("http handler failed", { path: c.req.path, error: e });
    return shaped(c, answer);
  });

  const tlsFiles = tls ? readTls(gw.tls_cert, gw.tls_key) : null;
  try {
    server = Bun.serve<SocketData>({
      hostname: gw.bind,
      port: gw.port,
      ...(opts.reusePort && { reusePort: true }),
      // bodyLimit answers with a JSON 413; Bun's own hard stop (a bare 413) sits above it for
      // streamed bodies that no route reads.
      maxRequestBodySize: Math.min(gw.max_payload_bytes * 2, 2 ** 31 - 1),
      ...(opts.idleTimeoutS !== undefined && { idleTimeout: opts.idleTimeoutS }),
      ...(tlsFiles ? { tls: tlsFiles } : {}),
      fetch: (req, srv) => app.fetch(req, { server: srv }),
      websocket: {
        // Frames up to twice the limit are read and answered with -32007; larger ones are cut off (1009).
        maxPayloadLength: Math.min(gw.max_payload_bytes * 2, 2 ** 31 - 1),
        backpressureLimit: 16 * 1024 * 1024,
        closeOnBackpressureLimit: true,
        open(ws) {
          sockets.add(ws);
          const conn = new RpcConnection(
            {
              methods,
              log,
              maxPayloadBytes: gw.max_payload_bytes,
              maxInFlight: opts.maxInFlight ?? 256,
              auth,
              hello,
              observe: (method, outcome) => metrics.inc("exoclaw_rpc_requests_total", { method, outcome }),
              onAuthenticated: () => unauthenticated.release(ws),
            },
            { send: (f) => queueFrame(ws, f), close: (code, reason) => (flushFrames(ws), ws.close(code, reason)) },
            { id: `c${nextId++}`, remoteAddress: ws.data.remoteAddress, authenticated: ws.data.authenticated },
          );
          ws.data.conn = conn;
          if (!conn.authenticated) {
            const refusal = unauthenticated.admit(ws);
            if (refusal) return ws.close(CLOSE_TRY_AGAIN_LATER, refusal);
            ws.data.timer = setTimeout(() => conn.expireAuth(), authTimeoutMs);
          }
        },
        message(ws, message) {
          ws.data.conn?.handleFrame(message);
        },
        close(ws) {
          sockets.delete(ws);
          unauthenticated.release(ws);
          if (ws.data.timer) clearTimeout(ws.data.timer);
          ws.data.conn?.onClosed();
        },
      },
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "EADDRINUSE")
      throw new UnavailableError(`port ${gw.port} on ${gw.bind} is already in use`, { cause: e });
    if (code === "EADDRNOTAVAIL")
      throw new UnavailableError(`cannot bind ${gw.bind}: address not available on this machine`, { cause: e });
    throw new UnavailableError(`cannot start the gateway on ${gw.bind}:${gw.port}: ${describeError(e)}`, { cause: e });
  }
  const live = server;
  const url = live.url.href.replace(/\/$/, "");
  log.info("gateway listening", {
    url,
    port: live.port,
    bind: gw.bind,
    auth: tokenRequired ? "token" : "none (loopback only)",
    tls,
    config: config.file ?? "defaults",
  });
  return {
    url,
    port: live.port ?? gw.port,
    connections: () => sockets.size,
    async stop(drainMs = 10_000) {
      for (const ws of sockets) ws.close(1001, "gateway shutting down");
      // Stop accepting, let requests in flight (a webhook turn answered inline) finish, then cut what is left.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([live.stop(false), new Promise<void>((r) => (timer = setTimeout(r, drainMs)))]);
      clearTimeout(timer);
      await live.stop(true);
    },
  };
}

/**
 * A body trickled byte by byte (slowloris) keeps a connection busy past Bun's idleTimeout, which
 * only cuts a connection that sends nothing. Every request body is read here whole, within
 * `ms` of the request reaching the router and at most `max` bytes, then handed on buffered; a body
 * still arriving at the deadline is cut with 408.
 */
function bodyDeadline(ms: number, max: number, replaced: (next: Request, raw: Request) => void) {
  return async (c: { req: { raw: Request } }, next: () => Promise<void>) => {
    const raw = c.req.raw;
    if (!raw.body) return next();
    const reader = raw.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), ms)));
    try {
      for (;;) {
        const step = await Promise.race([reader.read(), late]);
        if (step === "late") {
          void reader.cancel().catch(() => {});
          throw new ExoError("request_timeout", `request body not received within body_timeout_ms (${ms} ms)`);
        }
        if (step.done) break;
        size += step.value.length;
        if (size > max) {
          void reader.cancel().catch(() => {});
          throw new ExoError("payload_too_large", `body exceeds max_payload_bytes (${max})`);
        }
        chunks.push(step.value);
      }
    } finally {
      clearTimeout(timer);
    }
    const body = Buffer.concat(chunks);
    // A length, not chunked framing: the body is whole now (and bodyLimit checks the header alone).
    const headers = new Headers(raw.headers);
    headers.delete("transfer-encoding");
    headers.set("content-length", String(body.length));
    c.req.raw = new Request(raw, { body, headers });
    replaced(c.req.raw, raw);
    return next();
  };
}

/**
 * The cap on sockets that opened without a token (issue 15): idle ones are closed after the auth
 * timeout anyway, but thousands opened at once would hold memory and descriptors meanwhile. Beyond
 * `max_unauthenticated_per_address` from one address, or `max_unauthenticated_sockets` in all, a
 * new one is closed at once with 1013 (try again later) and counted; authenticated clients are
 * never counted, so they keep being served.
 */
function unauthenticatedSockets(
  gw: { max_unauthenticated_sockets: number; max_unauthenticated_per_address: number },
  metrics: Metrics,
) {
  const perAddress = new Map<string, number>();
  let total = 0;
  metrics.gauge("exoclaw_ws_unauthenticated", "WebSocket connections open and not yet authenticated.", () => total);
  metrics.help(
    "exoclaw_ws_refused_total",
    "WebSocket connections closed at once (1013) by the unauthenticated-socket caps.",
    "counter",
  );
  return {
    /** Counts the socket in, or returns why it is refused. */
    admit(ws: ServerWebSocket<SocketData>): string | null {
      const address = ws.data.remoteAddress;
      const mine = perAddress.get(address) ?? 0;
      const refusal =
        mine >= gw.max_unauthenticated_per_address
          ? `too many unauthenticated connections from this address (max_unauthenticated_per_address = ${gw.max_unauthenticated_per_address})`
          : total >= gw.max_unauthenticated_sockets
            ? `too many unauthenticated connections (max_unauthenticated_sockets = ${gw.max_unauthenticated_sockets})`
            : null;
      if (refusal) {
        metrics.inc("exoclaw_ws_refused_total", {
          reason: mine >= gw.max_unauthenticated_per_address ? "per_address" : "total",
        });
        return refusal;
      }
      perAddress.set(address, mine + 1);
      total++;
      ws.data.pending = true;
      return null;
    },
    release(ws: ServerWebSocket<SocketData>): void {
      if (!ws.data.pending) return;
      ws.data.pending = false;
      total--;
      const left = (perAddress.get(ws.data.remoteAddress) ?? 1) - 1;
      if (left === 0) perAddress.delete(ws.data.remoteAddress);
      else perAddress.set(ws.data.remoteAddress, left);
    },
  };
}

/**
 * The client's address: the peer's, unless the peer is one of the operator's `trusted_proxies`;
 * then the right-most `X-Forwarded-For` entry that is not a trusted proxy (entries further left
 * were written by the client and prove nothing). Without trusted proxies the header is ignored.
 */
export function clientAddress(peer: string, forwardedFor: string | null, trusted: readonly string[]): string {
  const norm = (a: string) =>
    a
      .trim()
      .toLowerCase()
      .replace(/^\[|\]$/g, "")
      .replace(/^::ffff:(?=\d+\.)/, "");
  const isTrusted = (a: string) => trusted.some((t) => norm(t) === norm(a));
  if (!forwardedFor || !isTrusted(peer)) return peer;
  const hops = forwardedFor
    .split(",")
    .map(norm)
    .filter((h) => h !== "");
  for (let i = hops.length - 1; i >= 0; i--) if (!isTrusted(hops[i]!)) return hops[i]!;
  return peer;
}
