export interface BusMessage {
  subject: string;
  data: Uint8Array;
}

/**
 * Publish/subscribe between the parts of one gateway, or several gateways over NATS (SPEC §12).
 * Core pub/sub is at-most-once: a message published while NATS is unreachable goes to this
 * process's own subscribers only. Anything that must not be lost is kept in the store.
 */
export interface Bus {
  readonly mode: "nats" | "local";
  publish(subject: string, data: Uint8Array): Promise<void>;
  /** Messages on `subject` (wildcards `*` and `>`), until the returned iterator is closed. */
  subscribe(subject: string): AsyncIterableIterator<BusMessage> & { close(): void };
  close(): Promise<void>;
}
