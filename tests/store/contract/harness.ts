/** What the port contracts share: the harness an implementation hands them, and test data. */
import type { NewMessage, SessionAddress } from "../../../src/core/index.ts";

export interface PortHarness<P> extends AsyncDisposable {
  store: P;
  /** Advances the injected clock. */
  tick(ms?: number): void;
}

export type MakeHarness<P> = () => Promise<PortHarness<P>>;

export function addr(peer: string | null, over: Partial<SessionAddress> = {}): SessionAddress {
  const a = { agent: "main", channel: "telegram", account: "bot1", peer, thread: null, ...over };
  return {
    ...a,
    key: `${a.agent}:${a.channel}:${a.account}:${a.peer ?? "main"}${a.thread ? ":" + a.thread : ""}`,
    ...over,
  };
}

export const user = (text: string): NewMessage => ({ role: "user", parts: [{ type: "text", text }] });
