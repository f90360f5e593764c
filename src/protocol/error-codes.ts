import type { ErrorCode } from "../lib/errors.ts";

/** The one table from error kinds to JSON-RPC codes and HTTP statuses (SPEC §5). */
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
};

export const RPC = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL: -32603,
  UNAUTHORIZED: -32001,
  BUDGET_EXCEEDED: -32002,
  PROVIDER_ERROR: -32003,
  PLUGIN_ERROR: -32004,
  RATE_LIMITED: -32005,
  NOT_FOUND: -32006,
  PAYLOAD_TOO_LARGE: -32007,
} as const;
