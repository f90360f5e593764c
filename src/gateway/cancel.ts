/**
 * `chat.cancel {session}` across gateways (SPEC §5, §12; issue 14): a turn runs on whichever gateway
 * took it (a channel message's on the one that pulled it from the work queue; a client's on the one it
 * was connected to), so a cancel is published on the bus, `<ns>.cancel.<session token>`, to every
 * gateway. Each one cancels its own turns of that session (AgentRunner.cancelSession: running or
 * queued, whatever started them — a WebSocket chat.send, /v1/chat/completions, a channel message)
 * and answers on the request's reply subject with how many. The caller sums the answers until every
 * gateway it expects has answered (the heartbeats of the work queue; itself alone on the in-process
 * bus) or `timeoutMs` passed, so `cancelled` counts the turns cancelled cluster-wide, minus those of
 * a gateway that did not answer in time (which still cancels them when the message reaches it).
 *
 * The session id is escaped like every id the NATS store puts in a subject (`=XX`), so `a.*` or `>`
 * is one literal token; a receiver also checks that the body's session is the subject's own token,
 * and cancels only turns whose key is exactly that session.
 */
import { randomUUID } from "node:crypto";
import type { Bus } from "../bus/index.ts";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { token } from "../store/nats/context.ts";

export interface SessionCancelOptions {
  /** The bus every gateway of the cluster listens on (NATS), or the in-process one. */
  bus: Bus;
  /** Subject prefix (`[store] namespace`): clusters sharing one NATS do not cancel each other's turns. */
  namespace: string;
  /** This gateway's name in answers (the work queue's heartbeat id when there is one). */
  id: string;
  /** Cancels this process's turns of a session; returns how many. */
  cancelLocal: (session: string) => number;
  /** The gateways expected to answer (heartbeats seen), or null when unknown: the caller waits the whole window. */
  peers?: () => Promise<string[] | null>;
  /** The bus was opened for this alone: stop() closes it. */
  ownsBus?: boolean;
  /** Longest wait for the answers (default 1 s). */
  timeoutMs?: number;
  log: Logger;
}

interface CancelRequest {
  session: string;
  reply: string;
}

interface CancelAnswer {
  gateway: string;
  cancelled: number;
}

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = (d: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(d));

export class SessionCancel {
  private readonly sub: ReturnType<Bus["subscribe"]>;
  private readonly timeoutMs: number;

  constructor(private readonly opts: SessionCancelOptions) {
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.sub = opts.bus.subscribe(`${opts.namespace}.cancel.*`);
    void this.listen();
  }

  /** The subject of a session's cancel: its key is one escaped token. */
  subject(session: string): string {
    return `${this.opts.namespace}.cancel.${token(session)}`;
  }

  private async listen(): Promise<void> {
    for await (const m of this.sub) {
      try {
        const body = dec(m.data) as Partial<CancelRequest>;
        if (typeof body.session !== "string" || typeof body.reply !== "string") continue;
        // The subject says which session: a body naming another one is not acted on.
        if (m.subject !== this.subject(body.session)) continue;
        if (!body.reply.startsWith(`${this.opts.namespace}.cancelled.`)) continue;
        const cancelled = this.opts.cancelLocal(body.session);
        if (cancelled > 0) this.opts.log.info("turns cancelled", { session: body.session, cancelled });
        const answer: CancelAnswer = { gateway: this.opts.id, cancelled };
        await this.opts.bus.publish(body.reply, enc(answer));
      } catch (e) {
        this.opts.log.warn("a cancel request could not be handled", { error: describeError(e) });
      }
    }
  }

  /**
   * Cancels every turn of `session` on every gateway that answers within the window; resolves with
   * their sum. On the in-process bus (one gateway, or NATS unreachable) only this gateway's count.
   */
  async cancel(session: string): Promise<number> {
    const { bus } = this.opts;
    const expected = new Set<string>([this.opts.id]);
    let known = true;
    if (bus.mode === "nats") {
      const peers = await this.opts.peers?.().catch(() => null);
      if (peers) for (const p of peers) expected.add(p);
      else known = false;
    }
    const reply = `${this.opts.namespace}.cancelled.${randomUUID().replaceAll("-", "")}`;
    const answers = bus.subscribe(reply);
    const counts = new Map<string, number>();
    const collected = (async () => {
      for await (const m of answers) {
        try {
          const a = dec(m.data) as Partial<CancelAnswer>;
          if (typeof a.gateway !== "string" || typeof a.cancelled !== "number") continue;
          counts.set(a.gateway, a.cancelled);
        } catch {
          continue;
        }
        if (known && [...expected].every((g) => counts.has(g))) break;
      }
    })();
    const timer = setTimeout(() => answers.close(), this.timeoutMs);
    try {
      await bus.publish(this.subject(session), enc({ session, reply } satisfies CancelRequest));
      await collected;
    } finally {
      clearTimeout(timer);
      answers.close();
    }
    const missing = [...expected].filter((g) => !counts.has(g));
    if (known && missing.length > 0)
      this.opts.log.warn("gateways did not answer a cancel in time; their turns of the session may still run", {
        session,
        missing,
      });
    let n = 0;
    for (const c of counts.values()) n += c;
    return n;
  }

  /** Stops answering cancels (and closes the bus when it is this one's own). */
  async stop(): Promise<void> {
    this.sub.close();
    if (this.opts.ownsBus) await this.opts.bus.close();
  }
}
