import { ExoError } from "../lib/errors.ts";

/** A plugin failed to load or a call into it failed (trap, timeout, bad output, limit). -32004 over RPC. */
export class SandboxError extends ExoError {
  constructor(message: string, options?: { data?: unknown; cause?: unknown }) {
    super("plugin_error", message, options);
  }
}
