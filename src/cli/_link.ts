/**
 * A gateway connection that comes back. When the socket closes (a gateway restart, a network blip)
 * it says so once on stderr ("gateway gone, reconnecting…") and reconnects with backoff (0.25 s
 * doubling to 5 s) until the gateway answers again or the link is closed; a token the new gateway
 * refuses ends it. Calls made meanwhile wait for the new connection instead of failing.
 */
import { AuthError, UnavailableError } from "../lib/errors.ts";
import { connectGateway, type GatewayClient } from "./_client.ts";

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

export interface GatewayLink {
  /** The live connection, waiting for a reconnect in progress. Rejects when the link ended (closed, or the token refused). */
  ready(): Promise<GatewayClient>;
  /** Whether a reconnect is in progress right now. */
  readonly reconnecting: boolean;
  close(): void;
}

export interface LinkOptions {
  url: string;
  token: string;
  connectTimeoutMs?: number;
  /** Notifications of every connection, the first and each one after a reconnect. */
  onNotification(method: string, params: unknown): void;
  /** One line for the user (stderr). */
  say(line: string): void;
}

/** Connects once (throws as connectGateway does); later losses are reconnected in the background. */
export async function openLink(opts: LinkOptions): Promise<GatewayLink> {
  const timeout = opts.connectTimeoutMs ?? 5000;
  let closed = false;
  let current: Promise<GatewayClient>;
  let reconnecting = false;
  let ended: Error | null = null;
  let wake: (() => void) | null = null;

  const adopt = (client: GatewayClient): GatewayClient => {
    client.onNotification(opts.onNotification);
    client.onClose((code) => {
      if (closed) return;
      if (code === 4001) {
        ended = new AuthError(`the gateway at ${opts.url} closed the connection: unauthorized`);
        current = Promise.reject(ended);
        current.catch(() => {});
        return;
      }
      opts.say("gateway gone, reconnecting…");
      reconnecting = true;
      current = reconnect();
      current.catch(() => {});
    });
    return client;
  };

  async function reconnect(): Promise<GatewayClient> {
    let delay = FIRST_RETRY_MS;
    while (!closed) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        wake = () => (clearTimeout(t), r());
      });
      wake = null;
      if (closed) break;
      try {
        const client = adopt(await connectGateway(opts.url, opts.token, timeout));
        reconnecting = false;
        opts.say(`reconnected to ${opts.url}`);
        return client;
      } catch (e) {
        if (e instanceof AuthError) {
          reconnecting = false;
          ended = e;
          throw e;
        }
        delay = Math.min(delay * 2, MAX_RETRY_MS);
      }
    }
    reconnecting = false;
    throw new UnavailableError("the connection to the gateway was closed");
  }

  current = Promise.resolve(adopt(await connectGateway(opts.url, opts.token, timeout)));
  return {
    ready: () => (ended ? Promise.reject(ended) : current),
    get reconnecting() {
      return reconnecting;
    },
    close() {
      closed = true;
      wake?.();
      void current.then(
        (c) => c.close(),
        () => {},
      );
    },
  };
}
