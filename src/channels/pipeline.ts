/**
 * The webhook pipeline (SPEC §7): size limit (the gateway's body limit) → signature check by the
 * host with host-held secrets (a failure is 401 and no plugin sees the body) → `parse_incoming` in
 * the sandbox → dedupe by message id → store, then acknowledge fast → route → agent turn →
 * `format_outgoing` → each request sent through the plugin's allowlist with secrets filled in.
 * Before a turn, ./access.ts decides whether the sender may talk at all (pairing, allowlist, groups,
 * rate); a refused message is marked done at once — no turn, no history, no usage — and at most one
 * short notice goes back (a pairing code, a "slow down"). The `http` channel is the operator's own
 * (authenticated by the gateway token) and is not judged.
 * An accepted message stays pending in the store until its reply went out, and is retried if the
 * turn or the send fails; once the turn has answered, its reply is stored first, so a retry only
 * sends again and never re-runs the turn (its model calls and tools). The `http` channel answers in
 * the webhook's own response instead.
 * Under load an accepted message does not start its delivery at once: ./intake.ts holds a bounded
 * number in memory and leaves the rest waiting in the store, drained in order per session.
 *
 * The plugin sees the request without its authentication and signature headers and fills only the
 * channel's send secrets into its requests (./boundary.ts). Failed verifications are limited per
 * channel and remote address.
 */
import * as v from "valibot";
import type { AgentRunner } from "../agent/index.ts";
import type { ChannelConfig } from "../config/index.ts";
import type { Metrics } from "../lib/metrics.ts";
import type { Logger } from "../lib/log.ts";
import type { InboundAddress, Route } from "../router/index.ts";
import type { PluginHost } from "../sandbox/index.ts";
import type { Store } from "../store/index.ts";
import { type Bus, inboundSubject } from "../bus/index.ts";
import { packMsgpack } from "../protocol/codec.ts";
import { createTokenCheck } from "../auth/index.ts";
import { createFailureLimiter, type FailureLimiter, limiterKey } from "../auth/rate-limit.ts";
import { type Admission, ChannelAccess } from "./access.ts";
import { ChannelIntake } from "./intake.ts";
import { forPlugin, replyHeaders, sendSecrets } from "./boundary.ts";
import { Pairings } from "./pairing.ts";
import { verifyWebhook, type VerifyScheme } from "./verify.ts";

const Message = v.object({
  id: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
  account: v.pipe(v.string(), v.minLength(1)),
  peer: v.pipe(v.string(), v.minLength(1)),
  guild: v.optional(v.string()),
  team: v.optional(v.string()),
  thread: v.optional(v.string()),
  sender: v.optional(v.string()),
  /** A group conversation (several people share the peer); set by the plugin from the platform's chat type. */
  group: v.optional(v.boolean()),
  /** The message is addressed to the bot: it mentions the bot, replies to one of its messages, or is a command for it. */
  mentioned: v.optional(v.boolean()),
  text: v.string(),
});
export type InboundMessage = v.InferOutput<typeof Message>;

const Parsed = v.object({
  messages: v.array(Message),
  reply: v.optional(v.object({ status: v.pipe(v.number(), v.integer(), v.minValue(100), v.maxValue(599)), headers: v.optional(v.record(v.string(), v.string()), {}), body: v.optional(v.string(), "") })),
});

const Outgoing = v.object({
  requests: v.array(v.object({ method: v.string(), url: v.string(), headers: v.optional(v.record(v.string(), v.string()), {}), body: v.optional(v.string(), "") })),
});

export interface ChannelSpec {
  name: string;
  plugin: string;
  /** Role → value, resolved from the channel's `secrets` (role → credential name). */
  secrets: () => Record<string, string>;
}

export interface PipelineDeps {
  host: PluginHost;
  store: Store;
  runner: AgentRunner;
  route: (addr: InboundAddress) => Route;
  log: Logger;
  /** Verifies the gateway token for channels whose plugin asks for no signature ("none"). */
  gatewayAuth: (req: Request) => boolean;
  /** Where accepted messages are announced (SPEC §12); best effort, never blocks a webhook. */
  bus?: Bus;
  nowS?: () => number;
  /** The caller's address, for limiting failed verifications (default: one shared bucket). */
  remoteOf?: (req: Request) => string;
  /** Values a plugin must never see in a header or query (the gateway token). */
  hostSecrets?: () => readonly string[];
  /** Failed verifications per channel and address (default: 10 a minute). */
  verifyLimiter?: FailureLimiter;
  /** Who may talk on a channel: its `[channels.<name>]` section as it is now (reloadable); absent = the defaults. */
  policy?: (channel: string) => Partial<ChannelConfig> | undefined;
  /** Counts refused messages (`exoclaw_channel_refused_total`). */
  metrics?: Metrics;
  /** Pairing codes and approvals (shared with the `pairing.*` methods); default: over `store`. */
  pairings?: Pairings;
  /** The clock of pairing codes and rate windows (tests). */
  now?: () => number;
  /** A configured channel by name, for messages waiting in the store (./intake.ts); absent: none are drained. */
  channelSpec?: (name: string) => ChannelSpec | undefined;
  /** Channel deliveries held in memory at most (./intake.ts); the rest wait in the store. Default 64. */
  maxHeld?: () => number;
}

/**
 * Whose semantic memory a message belongs to: its sender's. A message without a sender is its
 * peer's when that is one person (a direct chat); a group message without a sender has none (null),
 * or one member's facts would reach everyone in the group.
 */
export function personFor(channel: string, m: InboundMessage): string | null {
  if (m.sender) return `${channel}:${m.account}:${m.sender}`;
  if (m.group || m.guild !== undefined || m.team !== undefined) return null;
  return `${channel}:${m.account}:${m.peer}`;
}

/**
 * A send the platform refused: a non-2xx status, or a 2xx whose JSON body says `"ok": false` (Slack
 * answers errors with 200 and `{"ok":false,"error":…}`; Telegram's errors say `ok: false` too).
 */
function sendError(res: { status: number; body?: string; error?: string }): string | null {
  if (res.status < 200 || res.status >= 300) return res.error ?? `HTTP ${res.status}`;
  try {
    const body = JSON.parse(res.body ?? "") as unknown;
    if (body && typeof body === "object" && (body as { ok?: unknown }).ok === false) {
      const why = (body as { error?: unknown; description?: unknown }).error ?? (body as { description?: unknown }).description;
      return `the platform answered ok: false${typeof why === "string" ? ` (${why.slice(0, 200)})` : ""}`;
    }
  } catch {
    // Not JSON: the status decides.
  }
  return null;
}

function addressOf(channel: string, m: InboundMessage): InboundAddress {
  return {
    channel,
    account: m.account,
    peer: m.peer,
    ...(m.guild !== undefined && { guild: m.guild }),
    ...(m.team !== undefined && { team: m.team }),
    ...(m.thread !== undefined && { thread: m.thread }),
  };
}

export interface WebhookResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const json = (status: number, body: unknown): WebhookResponse => ({ status, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

export class ChannelPipeline {
  /** Deliveries running now: a retry pass must not deliver the same message twice. */
  private readonly delivering = new Set<string>();
  /** Their promises, so shutdown can wait for them. */
  private readonly running = new Set<Promise<boolean>>();
  private readonly limiter: FailureLimiter;
  /** Pairing codes and approvals, kept in the store. */
  readonly pairings: Pairings;
  private readonly access: ChannelAccess;
  /** Bounded work under load: which accepted messages start now and which wait in the store. */
  private readonly intake: ChannelIntake<ChannelSpec, InboundMessage>;

  constructor(private readonly deps: PipelineDeps) {
    this.pairings = deps.pairings ?? new Pairings(deps.store, deps.now);
    this.access = new ChannelAccess(this.pairings, deps.now);
    this.intake = new ChannelIntake({
      capacity: deps.maxHeld ?? (() => 64),
      sessionOf: (channel, m) => deps.route(addressOf(channel, m)).session,
      channel: (name) => deps.channelSpec?.(name),
      parse: (payload) => {
        try {
          const r = v.safeParse(Message, JSON.parse(payload));
          return r.success ? r.output : null;
        } catch {
          return null;
        }
      },
      deliver: (channel, m, attempt) => {
        const p = this.deliver(channel, m, null, attempt);
        this.track(p);
        return p;
      },
      isDelivering: (id) => this.delivering.has(id),
      pending: (limit) => deps.store.pendingInbound(limit),
    });
    this.limiter = deps.verifyLimiter ?? createFailureLimiter({
      maxFailures: 10,
      windowMs: 60_000,
      // Never a global lock: the platform's own addresses never authenticate as "trusted", and strangers
      // must not be able to shut a channel's door by failing often enough.
      maxGlobalFailures: Number.POSITIVE_INFINITY,
      key: (bucket) => bucket,
    });
  }

  /** Handles one webhook request for `channel`. Never throws. */
  async handle(channel: ChannelSpec, req: Request): Promise<WebhookResponse> {
    const { host, log } = this.deps;
    const plugin = host.get(channel.plugin);
    if (!plugin || plugin.description.kind !== "channel" || !plugin.description.channel) {
      log.error("channel plugin not available", { channel: channel.name, plugin: channel.plugin });
      return json(502, { error: `channel ${channel.name}: its plugin ${channel.plugin} is not loaded` });
    }
    const scheme = plugin.description.channel.verify as VerifyScheme;
    // Per channel and address: a guesser locks out only itself, never the platform's own addresses.
    const bucket = this.bucketOf(channel, req);
    const limited = this.limited(bucket);
    if (limited) return limited;
    const raw = new Uint8Array(await req.arrayBuffer());
    const headers: Record<string, string> = {};
    req.headers.forEach((value, key) => (headers[key.toLowerCase()] = value));
    const secrets = channel.secrets();
    if (scheme === "none") {
      if (!this.deps.gatewayAuth(req)) {
        this.limiter.recordFailure(bucket);
        return json(401, { error: "unauthorized" });
      }
    } else {
      const verdict = verifyWebhook(scheme, { headers, rawBody: raw }, (role) => secrets[role] ?? null, this.deps.nowS?.());
      if (!verdict.ok) {
        this.limiter.recordFailure(bucket);
        log.warn("webhook refused", { channel: channel.name, reason: verdict.reason });
        return json(401, { error: "invalid signature" });
      }
    }
    const hidden = [...Object.values(secrets), ...(this.deps.hostSecrets?.() ?? [])];
    const query = forPlugin(Object.fromEntries(new URL(req.url).searchParams), hidden, false);
    let parsed: v.InferOutput<typeof Parsed>;
    try {
      const input = { headers: forPlugin(headers, hidden, true), body: new TextDecoder().decode(raw), query };
      const out = await host.callRaw(channel.plugin, "parse_incoming", JSON.stringify(input));
      const r = v.safeParse(Parsed, JSON.parse(out));
      if (!r.success) throw new Error("parse_incoming returned an invalid shape");
      parsed = r.output;
    } catch (e) {
      log.error("parse_incoming failed", { channel: channel.name, error: e instanceof Error ? e.message : String(e) });
      return json(502, { error: `channel ${channel.name}: the plugin could not read this request` });
    }
    // The http channel answers in this response, so its caller waits for the turn: when the turn queue
    // is full it is told so (429) before anything is stored, like the WebSocket and the OpenAI endpoint.
    if (plugin.description.channel.id === "http") {
      const busy = parsed.messages.map((m) => this.deps.runner.refusal(this.deps.route(addressOf(channel.name, m)).session)).find((b) => b !== null);
      if (busy) {
        const headers = { "content-type": "application/json", "retry-after": String(Math.max(1, Math.ceil(busy.retryAfterMs / 1000))) };
        return { status: 429, headers, body: JSON.stringify({ error: busy.message, retry_after_ms: busy.retryAfterMs }) };
      }
    }
    const accepted: InboundMessage[] = [];
    for (const m of parsed.messages) {
      // Stored before it is acknowledged: a crash after the 200 still finds it pending.
      const fresh = await this.deps.store.acceptInbound({ id: `${channel.name}:${m.id}`, channel: channel.name, payload: JSON.stringify(m), received_at: Date.now() });
      if (fresh) accepted.push(m);
    }
    // A handshake or a refusal (Discord PING, a malformed body): the plugin's own answer, nothing to run.
    if (parsed.messages.length === 0 && parsed.reply) return { status: parsed.reply.status, headers: replyHeaders(parsed.reply.headers), body: parsed.reply.body };
    if (plugin.description.channel.id === "http") {
      for (const m of accepted) this.announce(channel, m);
      return this.answerInline(channel, accepted, parsed.messages.length - accepted.length);
    }
    for (const m of accepted) this.intake.offer(channel, `${channel.name}:${m.id}`, m);
    if (parsed.reply) return { status: parsed.reply.status, headers: replyHeaders(parsed.reply.headers), body: parsed.reply.body };
    return json(200, { ok: true, accepted: accepted.length });
  }

  /**
   * `GET /webhook/:channel`: Meta's verification handshake (WhatsApp, Messenger): `hub.mode=subscribe`
   * with `hub.verify_token` equal to the channel's `verify_token` role → the challenge, as text.
   * Answered by the host, so the verify token never enters a plugin.
   */
  handshake(channel: ChannelSpec, req: Request): WebhookResponse {
    // A wrong verify token counts like a bad signature: the handshake must not be a guessing oracle.
    const bucket = this.bucketOf(channel, req);
    const limited = this.limited(bucket);
    if (limited) return limited;
    const q = new URL(req.url).searchParams;
    const want = channel.secrets().verify_token;
    const given = q.get("hub.verify_token");
    const challenge = q.get("hub.challenge");
    if (q.get("hub.mode") !== "subscribe" || !want || given === null || challenge === null || !createTokenCheck(want)(given)) {
      this.limiter.recordFailure(bucket);
      return { status: 403, headers: { "content-type": "text/plain" }, body: "forbidden" };
    }
    return { status: 200, headers: { "content-type": "text/plain" }, body: challenge };
  }

  /** Announces an admitted message on the bus (SPEC §12); best effort. A refused one is never announced. */
  private announce(channel: ChannelSpec, m: InboundMessage): void {
    this.deps.bus?.publish(inboundSubject(channel.name, m.account, m.peer), packMsgpack({ channel: channel.name, ...m })).catch(() => {});
  }

  /** Whether `m`'s sender may talk now; `retry` re-checks the policy of a message admitted before. */
  private async judge(channel: ChannelSpec, m: InboundMessage, retry: boolean): Promise<Admission> {
    // The operator's own channel: only whoever holds the gateway token reaches it (verify "none").
    const declared = this.deps.host.get(channel.plugin)?.description.channel;
    if (declared?.id === "http" && declared.verify === "none") return { admit: true };
    return this.access.admit(channel.name, this.deps.policy?.(channel.name), m, personFor(channel.name, m), retry);
  }

  /**
   * A refused message is done: no turn, no history, no usage, no retry. Its notice (if any) is sent
   * once through the channel's own send path; a failed notice is logged and dropped.
   */
  private async refuse(channel: ChannelSpec, m: InboundMessage, verdict: Admission & { admit: false }): Promise<void> {
    const { log, store } = this.deps;
    const id = `${channel.name}:${m.id}`;
    this.deps.metrics?.inc("exoclaw_channel_refused_total", { channel: channel.name, reason: verdict.reason });
    log.debug("channel message refused", { channel: channel.name, message: m.id, reason: verdict.reason, person: personFor(channel.name, m) ?? `${channel.name}:${m.account}:${m.peer}` });
    // The notice first: once the message is done, it is fully handled (a crash in between leaves it
    // pending, and the retry refuses it again without a notice).
    if (verdict.notice !== undefined) {
      try {
        await this.send(channel, m, verdict.notice);
      } catch (e) {
        log.warn("channel notice not sent", { channel: channel.name, message: m.id, reason: verdict.reason, error: e instanceof Error ? e.message : String(e) });
      }
    }
    await store.completeInbound(id).catch(() => {});
  }

  private track(p: Promise<boolean>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /** Resolves once every delivery started so far has finished (sent, or left pending for a retry). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Failed verifications are counted per channel and remote address. */
  private bucketOf(channel: ChannelSpec, req: Request): string {
    return `${channel.name}\n${limiterKey(this.deps.remoteOf?.(req) ?? "unknown")}`;
  }

  /** 429 while `bucket` has had too many failed verifications, else null. */
  private limited(bucket: string): WebhookResponse | null {
    const wait = this.limiter.retryAfter(bucket);
    if (wait === 0) return null;
    return { status: 429, headers: { "content-type": "application/json", "retry-after": String(Math.ceil(wait / 1000)) }, body: JSON.stringify({ error: "too many failed verifications" }) };
  }

  /** The `http` channel: run the turn now and put the reply in the response. */
  private async answerInline(channel: ChannelSpec, accepted: InboundMessage[], duplicates: number): Promise<WebhookResponse> {
    const replies = [];
    for (const m of accepted) {
      const out = await this.turn(channel, m);
      await this.deps.store.completeInbound(`${channel.name}:${m.id}`);
      replies.push({ id: m.id, peer: m.peer, session: out.session, text: out.text, stop_reason: out.stop_reason });
    }
    return json(200, { replies, duplicates });
  }

  /** Starts waiting channel messages in free places (the retry loop's kick; see ./intake.ts). */
  drain(): void {
    this.intake.drain();
  }

  /** Shutdown: no new delivery starts; waiting messages stay in the store for the next start. */
  close(): void {
    this.intake.close();
  }

  private turn(channel: ChannelSpec, m: InboundMessage) {
    const route = this.deps.route(addressOf(channel.name, m));
    return this.deps.runner.run(
      {
        agent: route.agent,
        content: m.text,
        person: personFor(channel.name, m),
        address: { key: route.session, agent: route.agent, channel: channel.name, account: m.account, peer: m.peer, thread: m.thread ?? null },
      },
      // Bounded by the intake (and the http channel's check before it stores), so never refused here.
      { signal: new AbortController().signal, emit: () => {}, busy: "wait" },
    );
  }

  /** format_outgoing → each request through the plugin's allowlist. Throws when any send fails. */
  private async send(channel: ChannelSpec, m: InboundMessage, text: string): Promise<void> {
    const { host } = this.deps;
    const formatted = v.safeParse(
      Outgoing,
      JSON.parse(await host.callRaw(channel.plugin, "format_outgoing", JSON.stringify({ to: { account: m.account, peer: m.peer, ...(m.guild && { guild: m.guild }), ...(m.team && { team: m.team }), ...(m.thread && { thread: m.thread }) }, text, in_reply_to: m.id }))),
    );
    if (!formatted.success) throw new Error("format_outgoing returned an invalid shape");
    const fillable = sendSecrets(channel.secrets());
    for (const r of formatted.output.requests) {
      // The reply and the inbound text are model/user words: a placeholder they name is never filled.
      const error = sendError(await host.send(channel.plugin, r, fillable, JSON.stringify([text, m.text])));
      if (error !== null) throw new Error(`send failed: ${error}`);
    }
  }

  /**
   * Judge → turn → store the reply → format_outgoing → send; the message stays pending (and is
   * retried) until this succeeds. `reply` is the stored reply of an earlier attempt: then only the
   * send is retried — the sender was admitted and the turn (model calls, tools, history) ran. Without
   * one the sender's standing is judged first; a retry ("retry": after a failure or a restart) is
   * judged again without counting against the rate or sending a notice, so a revoked person, or a
   * message accepted just before a crash, gets no turn.
   */
  async deliver(channel: ChannelSpec, m: InboundMessage, reply: string | null, attempt: "new" | "retry"): Promise<boolean> {
    const { store, log } = this.deps;
    const id = `${channel.name}:${m.id}`;
    if (this.delivering.has(id)) return false;
    this.delivering.add(id);
    try {
      let text = reply;
      if (text === null) {
        let verdict: Admission;
        try {
          verdict = await this.judge(channel, m, attempt === "retry");
        } catch (e) {
          throw new Error(`the access check failed: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (!verdict.admit) {
          await this.refuse(channel, m, verdict);
          return false;
        }
        if (attempt === "new") this.announce(channel, m);
        const out = await this.turn(channel, m);
        // A cancelled turn (shutdown) has no answer to send: the message stays pending for the next start,
        // not counted as a failed attempt, so the drain runs it there before its session's later messages.
        if (out.stop_reason === "cancelled") return false;
        if (out.stop_reason === "error") throw new Error(out.error?.message ?? `the turn ended: ${out.stop_reason}`);
        text = out.text;
        // Before the send: from here on a failure re-sends this text, it does not ask the model again.
        await store.saveInboundReply(id, text);
      }
      await this.send(channel, m, text);
      await store.completeInbound(id);
      return true;
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      log.warn("channel delivery failed; it stays pending and will be retried", { channel: channel.name, message: m.id, error });
      await store.failInbound(id, error).catch(() => {});
      return false;
    } finally {
      this.delivering.delete(id);
    }
  }
}
