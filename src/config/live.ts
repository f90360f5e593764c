/**
 * The one live-config handle: every capability module reads `live.current` when it acts, so a
 * reload (SIGHUP, `config.reload`) that swaps it in applies at the next read — no module keeps its
 * own copy. Only the composition root replaces it, after every module accepted the new config.
 */
import type { Config } from "./load.ts";

export class LiveConfig {
  #current: Config;

  constructor(initial: Config) {
    this.#current = initial;
  }

  get current(): Config {
    return this.#current;
  }

  /** Swaps in `next`; returns the config it replaced. */
  replace(next: Config): Config {
    const prev = this.#current;
    this.#current = next;
    return prev;
  }
}
