/**
 * Error kinds shared by every module. Each kind maps to one JSON-RPC code and HTTP status
 * through the table in `src/protocol/error-codes.ts`; nothing else decides what a client sees.
 */
export type ErrorCode =
  | "parse_error"
  | "invalid_request"
  | "method_not_found"
  | "invalid_params"
  | "internal"
  | "unauthorized"
  | "budget_exceeded"
  | "provider_error"
  | "plugin_error"
  | "rate_limited"
  | "not_found"
  | "payload_too_large"
  | "config_invalid"
  | "usage"
  | "unavailable"
  | "forbidden"
  | "method_not_allowed"
  | "upgrade_required"
  | "request_timeout";

/** Base of every error exoclaw throws across a module boundary. `message` is safe to show a user. */
export class ExoError extends Error {
  readonly code: ErrorCode;
  readonly data: unknown;
  constructor(code: ErrorCode, message: string, options?: { data?: unknown; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.data = options?.data;
  }
}

/** A config file or flag is invalid; `message` names the key path and the file. */
export class ConfigError extends ExoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("config_invalid", message, options);
  }
}

/** Missing, wrong or late credentials. */
export class AuthError extends ExoError {
  constructor(message = "unauthorized") {
    super("unauthorized", message);
  }
}

/** A request's shape is wrong; `field` names the offending parameter. */
export class ParamsError extends ExoError {
  constructor(message: string, field: string) {
    super("invalid_params", message, { data: { field } });
  }
}

/** The user typed a command wrong (exit code 2). */
export class UsageError extends ExoError {
  constructor(message: string) {
    super("usage", message);
  }
}

/** Something the user can fix or wait out (a gateway that does not answer, a port in use). */
export class UnavailableError extends ExoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("unavailable", message, options);
  }
}

export function isExoError(e: unknown): e is ExoError {
  return e instanceof ExoError;
}

/** A one-line description of any thrown value, without a stack. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
