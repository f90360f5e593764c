import { ExoError } from "../lib/errors.ts";

/** The store cannot do what was asked: corrupt, read-only or full database, newer schema, closed. */
export class StoreError extends ExoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("unavailable", message, options);
  }
}
