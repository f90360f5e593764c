/**
 * The one table from error kinds to JSON-RPC codes and HTTP statuses (SPEC §5), and the renderers
 * that read it: every JSON-RPC error object and every HTTP error body the gateway sends comes from
 * here, so a kind means the same code and status on every surface.
 */
import { type ErrorCode, ExoError, isExoError } from "../lib/errors.ts";

/**
 * Kinds that share a JSON-RPC code are listed after the kind that code stands for (its canonical
 * kind, what `kindOfRpc` answers); the kind itself travels in HTTP bodies, not in RPC errors.
 */
export const ERROR_TABLE: Record<ErrorCode, { rpc: number; http: number }> = {
  parse_error: { rpc: -32700, http: 400 },
  invalid_request: { rpc: -32600, http: 400 },
  method_not_found: { rpc: -32601, http: 404 },
  invalid_params: { rpc: -32602, http: 400 },
  internal: { rpc: -32603, http: 500 },
  unauthorized: { rpc: -32001, http: 401 },
  budget_exceeded: { rpc: -32002, http: 402 },
  provider_error: { rpc: -32003, http: 502 },
  plugin_error: { rpc: -32004, http: 502 },
  rate_limited: { rpc: -32005, http: 429 },
  not_found: { rpc: -32006, http: 404 },
  payload_too_large: { rpc: -32007, http: 413 },
  config_invalid: { rpc: -32602, http: 400 },
  usage: { rpc: -32602, http: 400 },
  unavailable: { rpc: -32603, http: 503 },
  /** Refused by the exposure rules (Host, Origin): no credential would help. */
  forbidden: { rpc: -32001, http: 403 },
  /** An HTTP method the route does not serve (the stateless /mcp takes POST only); -32000 as MCP's SDK answers. */
  method_not_allowed: { rpc: -32000, http: 405 },
  /** `/ws` without a WebSocket upgrade. */
  upgrade_required: { rpc: -32600, http: 426 },
  /** A request body that did not arrive within `[gateway] body_timeout_ms` (a trickled body). */
  request_timeout: { rpc: -32600, http: 408 },
};

/** The JSON-RPC codes by name, read from the table. */
export const RPC = {
  PARSE_ERROR: ERROR_TABLE.parse_error.rpc,
  INVALID_REQUEST: ERROR_TABLE.invalid_request.rpc,
  METHOD_NOT_FOUND: ERROR_TABLE.method_not_found.rpc,
  INVALID_PARAMS: ERROR_TABLE.invalid_params.rpc,
  INTERNAL: ERROR_TABLE.internal.rpc,
  UNAUTHORIZED: ERROR_TABLE.unauthorized.rpc,
  BUDGET_EXCEEDED: ERROR_TABLE.budget_exceeded.rpc,
  PROVIDER_ERROR: ERROR_TABLE.provider_error.rpc,
  PLUGIN_ERROR: ERROR_TABLE.plugin_error.rpc,
  RATE_LIMITED: ERROR_TABLE.rate_limited.rpc,
  NOT_FOUND: ERROR_TABLE.not_found.rpc,
  PAYLOAD_TOO_LARGE: ERROR_TABLE.payload_too_large.rpc,
} as const;

const canonical = new Map<number, ErrorCode>();
for (const [kind, { rpc }] of Object.entries(ERROR_TABLE) as [ErrorCode, { rpc: number }][]) {
  if (!canonical.has(rpc)) canonical.set(rpc, kind);
}

/** The kind a JSON-RPC code stands for (the first kind listed with it), or null for a code not in the table. */
export function kindOfRpc(rpc: number): ErrorCode | null {
  return canonical.get(rpc) ?? null;
}

/** Every HTTP error body: `{"error":{"code":<kind>,"message":…,"data"?:…}}`. */
export interface HttpErrorBody {
  error: { code: ErrorCode; message: string; data?: unknown };
}

export interface HttpError {
  status: number;
  headers: Record<string, string>;
  body: HttpErrorBody;
}

/**
 * Renders anything thrown as an HTTP error: an ExoError by its kind's status, with `Retry-After`
 * (seconds) when its data carries `retry_after_ms` or `retry_after_s`; anything else as a bare 500
 * that reveals nothing.
 */
export function toHttpError(e: unknown): HttpError {
  const exo = isExoError(e) ? e : new ExoError("internal", "internal error");
  const error: HttpErrorBody["error"] = { code: exo.code, message: exo.message };
  if (exo.data !== undefined) error.data = exo.data;
  const headers: Record<string, string> = { "content-type": "application/json" };
  const data = exo.data as { retry_after_ms?: unknown; retry_after_s?: unknown } | undefined;
  const waitMs =
    typeof data?.retry_after_ms === "number"
      ? data.retry_after_ms
      : typeof data?.retry_after_s === "number"
        ? data.retry_after_s * 1000
        : null;
  if (waitMs !== null) headers["retry-after"] = String(Math.max(1, Math.ceil(waitMs / 1000)));
  return { status: ERROR_TABLE[exo.code].http, headers, body: { error } };
}

/** `toHttpError` as a fetch `Response`. */
export function httpErrorResponse(e: unknown): Response {
  const r = toHttpError(e);
  return Response.json(r.body, { status: r.status, headers: r.headers });
}
