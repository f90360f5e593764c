/**
 * The method table shape shared by the gateway and the modules that contribute methods.
 * A method validates its params with a valibot schema before the handler runs.
 */
import * as v from "valibot";
import { ParamsError } from "../lib/errors.ts";
import { describeIssue, issuePath } from "../lib/issues.ts";

/** What a handler may use of the connection that called it. */
export interface MethodContext {
  readonly connectionId: string;
  /** The id of the request being handled (null for a notification). */
  readonly requestId: string | number | null;
  readonly remoteAddress: string;
  /** Aborted when the client disconnects. */
  readonly signal: AbortSignal;
  /** Sends a JSON-RPC notification on the calling socket, in the request's encoding. */
  notify(method: string, params: unknown): void;
}

export interface Method<P = unknown> {
  /** Params schema; absent means the method takes no params (any given are ignored). */
  readonly params?: v.GenericSchema<unknown, P>;
  /** Operator-only methods (plugin.load …); reserved for the plugin host. */
  readonly operator?: boolean;
  handle(params: P, ctx: MethodContext): unknown;
}

export type MethodTable = ReadonlyMap<string, Method<never>>;

/** Helper that keeps P inferred from the schema. */
export function defineMethod<P>(m: Method<P>): Method<never> {
  return m as unknown as Method<never>;
}

/** Validates params; throws ParamsError naming the offending field. */
export function parseParams<P>(schema: v.GenericSchema<unknown, P>, params: unknown): P {
  const result = v.safeParse(schema, params ?? {});
  if (result.success) return result.output;
  const issue = result.issues[0];
  const field = issue ? issuePath(issue) : "(params)";
  const detail = issue ? describeIssue(issue) : "invalid";
  throw new ParamsError(`invalid params: ${field}: ${detail}`, field);
}
