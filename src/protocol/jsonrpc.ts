/**
 * JSON-RPC 2.0 message shapes and the pure parsing of one decoded frame into requests.
 * No I/O here: the gateway decodes bytes (codec.ts), hands the value to `parseMessage`,
 * dispatches the requests and encodes the replies with the same codec.
 */
import { isExoError } from "../lib/errors.ts";
import { ERROR_TABLE, RPC } from "./error-codes.ts";

export type RpcId = string | number | null;

export interface RpcRequest {
  jsonrpc: "2.0";
  id?: RpcId;
  method: string;
  params?: unknown;
}

export interface RpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export type RpcResponse =
  | { jsonrpc: "2.0"; id: RpcId; result: unknown }
  | { jsonrpc: "2.0"; id: RpcId; error: RpcErrorObject };

export interface RpcNotification {
  jsonrpc: "2.0";
  method: string;
  params?: unknown;
}

/** One entry of a parsed frame: a request to run, or an error to answer right away. */
export type ParsedEntry = { kind: "request"; request: RpcRequest } | { kind: "invalid"; response: RpcResponse };

export interface ParsedFrame {
  batch: boolean;
  entries: ParsedEntry[];
}

export function isNotification(req: RpcRequest): boolean {
  return !("id" in req) || req.id === undefined;
}

export function errorResponse(id: RpcId, code: number, message: string, data?: unknown): RpcResponse {
  const error: RpcErrorObject = data === undefined ? { code, message } : { code, message, data };
  return { jsonrpc: "2.0", id, error };
}

export function resultResponse(id: RpcId, result: unknown): RpcResponse {
  return { jsonrpc: "2.0", id, result };
}

/** Maps anything thrown by a handler to an error response; unknown errors become a bare -32603. */
export function toErrorResponse(id: RpcId, e: unknown): RpcResponse {
  if (isExoError(e)) {
    const { rpc } = ERROR_TABLE[e.code];
    return errorResponse(id, rpc, e.message, e.data);
  }
  return errorResponse(id, RPC.INTERNAL, "internal error");
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function validId(id: unknown): id is RpcId {
  return id === null || typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
}

/** Validates one decoded value as a request; never throws. */
export function parseEntry(value: unknown): ParsedEntry {
  if (!isPlainObject(value)) {
    return {
      kind: "invalid",
      response: errorResponse(null, RPC.INVALID_REQUEST, "invalid request: expected an object"),
    };
  }
  const id = "id" in value ? value.id : undefined;
  const replyId: RpcId = validId(id) ? id : null;
  if (id !== undefined && !validId(id)) {
    return {
      kind: "invalid",
      response: errorResponse(null, RPC.INVALID_REQUEST, "invalid request: id must be a string, number or null"),
    };
  }
  if (value.jsonrpc !== "2.0") {
    return {
      kind: "invalid",
      response: errorResponse(replyId, RPC.INVALID_REQUEST, 'invalid request: jsonrpc must be "2.0"'),
    };
  }
  if (typeof value.method !== "string" || value.method === "") {
    return {
      kind: "invalid",
      response: errorResponse(replyId, RPC.INVALID_REQUEST, "invalid request: method must be a non-empty string"),
    };
  }
  if ("params" in value && value.params !== undefined && typeof value.params !== "object") {
    return {
      kind: "invalid",
      response: errorResponse(replyId, RPC.INVALID_REQUEST, "invalid request: params must be an object or array"),
    };
  }
  const request: RpcRequest = { jsonrpc: "2.0", method: value.method };
  if (id !== undefined) request.id = id;
  if (value.params !== undefined && value.params !== null) request.params = value.params;
  return { kind: "request", request };
}

/** Most entries one batch may hold: each gets a reply, so an unbounded batch is an amplifier. */
export const MAX_BATCH_ENTRIES = 100;

/** Splits a decoded frame into entries (a batch or a single message). */
export function parseMessage(value: unknown): ParsedFrame | { batch: false; error: RpcResponse } {
  if (Array.isArray(value)) {
    if (value.length === 0) {
      return { batch: false, error: errorResponse(null, RPC.INVALID_REQUEST, "invalid request: empty batch") };
    }
    if (value.length > MAX_BATCH_ENTRIES) {
      return {
        batch: false,
        error: errorResponse(
          null,
          RPC.INVALID_REQUEST,
          `invalid request: a batch of ${value.length} entries exceeds the limit of ${MAX_BATCH_ENTRIES}`,
          { limit: MAX_BATCH_ENTRIES },
        ),
      };
    }
    return { batch: true, entries: value.map(parseEntry) };
  }
  return { batch: false, entries: [parseEntry(value)] };
}
