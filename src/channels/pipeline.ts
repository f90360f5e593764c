/**
 * The webhook pipeline (SPEC §7): size limit (the gateway's body limit) → signature check by the
 * host with host-held secrets (a failure is 401 and no plugin sees the body) → `parse_incoming` in
 * the sandbox → dedupe by message id → store, then acknowledge fast → route → agent turn →
 * `format_outgoing` → each request sent through the plugin's allowlist with secrets filled in.
 * Before a turn, ./access.ts decides whether the sender may talk at all (pairing, allowlist, groups,
 * rate); a refused message is marked done at once — no turn, no history, no usage — and at most one
 * short notice goes back (a pairing code, a "slow down"; always one where the plugin declares
 * `must_answer`, as Discord's deferred commands need). The `http` channel is the operator's own
 * (authenticated by the gateway token) and is not judged. A plugin's message without what a reply
 * needs is ignored and the webhook still acknowledged; only a body the plugin cannot read is 502.
 * An accepted message stays pending in the store until its reply went out, and is retried if the
 * turn or the send fails; once the turn has answered, its reply is stored first, so a retry only
 * sends again and never re-runs the turn (its model calls and tools). How the platform's answer is
 * read is the plugin's declaration (./send-result.ts); when to try again is ./outbox.ts: backoff, the
 * platform's hint, and the dead-letter inbox after a permanent refusal or the last attempt. The
 * `http` channel answers in the webhook's own response instead.
 * Under load an accepted message does not start its delivery at once: ./intake.ts holds a bounded
 * number in memory and leaves the rest waiting in the store, drained in order per session.
 *
 * The plugin sees the request without its authentication and signature headers and fills only the
 * channel's send secrets into its requests (./boundary.ts). Failed verifications are limited per
 * channel and remote address.
 */
import { type InboundAddress, personKey } from "../core/index.ts";
import { createHash } from "node:crypto";
import * as v from "valibot";
import type { AgentRunner } from "../agent/index.ts";
import type { ChannelConfig } from "../config/index.ts";
import { AuthError, describeError, ExoError } from "../lib/errors.ts";
import type { Metrics } from "../lib/metrics.ts";
import type { Logger } from "../lib/log.ts";
import { describeIssue, issuePath } from "../lib/issues.ts";
import { type Route } from "../router/index.ts";
import { escapeControl, type PluginHost } from "../sandbox/index.ts";
import type { PendingInbound, Store } from "../store/index.ts";
import { type Bus, inboundSubject } from "../bus/index.ts";
import { packMsgpack } from "../protocol/codec.ts";
import { toHttpError } from "../protocol/error-codes.ts";
import { createTokenCheck } from "../auth/index.ts";
import { createFailureLimiter, type FailureLimiter, limiterKey } from "../auth/rate-limit.ts";
import { type Admission, BUDGET_NOTICE, ChannelAccess, DEFAULT_POLICY, refusalNotice } from "./access.ts";
import { ChannelIntake } from "./intake.ts";
import { chainRequest, forPlugin, replyHeaders, sendSecrets } from "./boundary.ts";
import { DEFAULT_RETRY_POLICY, nextAttemptAt, type RetryPolicy } from "./outbox.ts";
import { Pairings } from "./pairing.ts";
import { readSendResult, type SendRefusal, type SendVerdict } from "./send-result.ts";
import { verifyWebhook, type VerifyScheme } from "./verify.ts";

const Message = v.object({
  /** The platform's message id, any length (a long one is hashed for the store's record id: recordId). */
  id: v.pipe(v.string(), v.minLength(1)),
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
  /** A button press (the plugin declares `channel.buttons`): not a turn; handed to PipelineDeps.onAction. */
  action: v.optional(v.object({ data: v.pipe(v.string(), v.maxLength(256)) })),
});
export type InboundMessage = v.InferOutput<typeof Message>;

/** Longest platform id kept as it is in a record id; a longer one is replaced by its SHA-256. */
const MAX_ID_CHARS = 256;

/**
 * The store's id of a channel message, `<channel>:<message id>` (dedupe, the inbox). A platform id
 * longer than 256 characters is unusual but valid: it is hashed (the same id gives the same record,
 * so a platform's retry is still recognised); the message keeps its own id for the plugin.
 */
export function recordId(channel: string, m: Pick<InboundMessage, "id">): string {
  if (m.id.length <= MAX_ID_CHARS) return `${channel}:${m.id}`;
  return `${channel}:sha256:${createHash("sha256").update(m.id).digest("hex")}`;
}

const Parsed = v.object({
  /** Each checked on its own (Message): one the host cannot answer is ignored, not the whole webhook. */
  messages: v.array(v.unknown()),
  reply: v.optional(
    v.object({
      status: v.pipe(v.number(), v.integer(), v.minValue(100), v.maxValue(599)),
      headers: v.optional(v.record(v.string(), v.string()), {}),
      body: v.optional(v.string(), ""),
    }),
  ),
});

const Outgoing = v.object({
  requests: v.array(
    v.object({
      method: v.string(),
      url: v.string(),
      headers: v.optional(v.record(v.string(), v.string()), {}),
      body: v.optional(v.string(), ""),
    }),
  ),
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
  /** The clock of pairing codes, rate windows and retry times (tests). */
  now?: () => number;
  /** A configured channel by name, for messages waiting in the store (./intake.ts); absent: none are drained. */
  channelSpec?: (name: string) => ChannelSpec | undefined;
  /** Channel deliveries held in memory at most (./intake.ts); the rest wait in the store. Default 64. */
  maxHeld?: () => number;
  /** When failed deliveries are tried again (default: 5 s growing to 1 h, 8 attempts). */
  retry?: RetryPolicy;
  /** Told when a delivery attempt ended (the retry loop re-arms for a pending one, counts change). */
  onDelivery?: (outcome: DeliveryOutcome) => void;
  /** A verified button press (an approval's Allow/Deny); never stored, never a turn. Absent: ignored. */
  onAction?: (channel: string, m: InboundMessage) => Promise<void>;
  /**
   * Several gateways on NATS (src/cluster/): a stored message is put on the JetStream work queue, and
   * the webhook acknowledged only once it holds it (503 otherwise); the queue, not the intake, starts
   * its delivery on whichever gateway pulls it. `claimReply` before a send makes the reply go out once
   * cluster-wide (false: another gateway sent or sends it); `releaseReply` after a failed send.
   */
  workQueue?: {
    publish(id: string, session: string): Promise<void>;
    claimReply(id: string): Promise<boolean>;
    releaseReply(id: string): Promise<void>;
    /** After a send: the claim says the reply went out (a later delivery completes instead of waiting). */
    markReplySent?(id: string): Promise<void>;
    /** Whether the reply was claimed and marked sent. */
    replySent?(id: string): Promise<boolean>;
  };
}

/**
 * How one delivery attempt ended: `sent`; `refused` (the sender may not talk: done, nothing sent);
 * `busy` (being delivered already, nothing done); `pending` (failed, tried again at `next_at`);
 * `dead` (failed for good: dead-lettered for the operator).
 */
export type DeliveryOutcome =
  | { state: "sent" }
  | { state: "refused" }
  /** Its turn was cancelled (chat.cancel): done, nothing sent. */
  | { state: "cancelled" }
  | { state: "busy" }
  | { state: "pending"; error: string; next_at: number }
  | { state: "dead"; error: string };

/**
 * Whose semantic memory a message belongs to: its sender's. A message without a sender is its
 * peer's when that is one person (a direct chat); a group message without a sender has none (null),
 * or one member's facts would reach everyone in the group.
 */
export function personFor(channel: string, m: InboundMessage): string | null {
  if (m.sender) return personKey(channel, m.account, m.sender);
  if (m.group || m.guild !== undefined || m.team !== undefined) return null;
  return personKey(channel, m.account, m.peer);
}

export function addressOf(channel: string, m: InboundMessage): InboundAddress {
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

/** What a platform that must answer every message is sent when the turn ended without a word. */
const EMPTY_REPLY_NOTICE = "(The assistant finished without an answer.)";

/**
 * This process in the store's claims on stored messages (one gateway worker of several, issue 13):
 * named by its worker slot, not its pid, so the process that replaces a crashed one (a restart, or
 * the supervisor's new worker) takes over its claims at once instead of waiting for them to expire.
 */
const CLAIM_HOLDER = process.env.EXOCLAW_WORKER !== undefined ? `worker-${process.env.EXOCLAW_WORKER}` : "gateway";
/** How long a claim holds if its worker dies mid-delivery; given back as soon as the delivery ends. */
const STORE_CLAIM_MS = 10 * 60_000;
const BUSY = { state: "busy" } as const;
/** How long a message another worker claimed is left to it before this one asks again (it may have died). */
const ELSEWHERE_MS = 30_000;

const json = (status: number, body: unknown): WebhookResponse => ({
  status,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
/** An error answer: status, body and `Retry-After` from the error table, like every HTTP error of the gateway. */
const fail = (e: ExoError): WebhookResponse => {
  const r = toHttpError(e);
  return { status: r.status, headers: r.headers, body: JSON.stringify(r.body) };
};

export class ChannelPipeline {
  /** Deliveries running now: a retry pass must not deliver the same message twice. */
  private readonly delivering = new Set<string>();
  /** Messages this process claimed in the store (given back when their delivery ends). */
  private readonly storeClaims = new Set<string>();
  /** Stored messages another worker holds, and until when this one leaves them to it. */
  private readonly elsewhere = new Map<string, number>();
  /** Their promises, so shutdown can wait for them. */
  private readonly running = new Set<Promise<unknown>>();
  private readonly limiter: FailureLimiter;
  /** Pairing codes and approvals, kept in the store. */
  readonly pairings: Pairings;
  private readonly access: ChannelAccess;
  /** Bounded work under load: which accepted messages start now and which wait in the store. */
  private readonly intake: ChannelIntake<ChannelSpec, InboundMessage>;

  constructor(private readonly deps: PipelineDeps) {
    this.pairings = deps.pairings ?? new Pairings(deps.store, deps.now);
    this.access = new ChannelAccess(this.pairings, deps.now);
    deps.metrics?.help(
      "exoclaw_channel_ignored_total",
      "Channel messages a plugin reported without what a reply needs (an id, an account, a peer): acknowledged and ignored.",
      "counter",
    );
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
        // Its first attempt (never tried: it waited in memory or in the store).
        const id = recordId(channel.name, m);
        if (!this.claim(id)) return Promise.resolve({ state: "busy" });
        // Another gateway worker may read the same pending message from the store (its drain): the
        // store's claim decides who delivers it.
        const p = this.claimStored(id).then((mine) =>
          mine ? this.attempt(channel, m, { reply: null, attempts: 0, fresh: attempt === "new" }) : BUSY,
        );
        this.track(p);
        return p;
      },
      isDelivering: (id) => this.isDelivering(id),
      pending: (limit) => deps.store.pendingInbound(limit),
    });
    this.limiter =
      deps.verifyLimiter ??
      createFailureLimiter({
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
      return fail(new ExoError("plugin_error", `channel ${channel.name}: its plugin ${channel.plugin} is not loaded`));
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
        return fail(new AuthError("unauthorized"));
      }
    } else {
      const verdict = verifyWebhook(
        scheme,
        { headers, rawBody: raw },
        (role) => secrets[role] ?? null,
        this.deps.nowS?.(),
      );
      if (!verdict.ok) {
        this.limiter.recordFailure(bucket);
        log.warn("webhook refused", { channel: channel.name, reason: verdict.reason });
        return fail(new AuthError("invalid signature"));
      }
    }
    const hidden = [...Object.values(secrets), ...(this.deps.hostSecrets?.() ?? [])];
    const query = forPlugin(Object.fromEntries(new URL(req.url).searchParams), hidden, false);
    let parsed: { messages: InboundMessage[]; reply?: v.InferOutput<typeof Parsed>["reply"] };
    try {
      const botUsername = this.deps.policy?.(channel.name)?.bot_username;
      // The owner's id lets a plugin answer a stranger's button press in the platform's own way; the host still decides (onAction).
      const owner = this.deps.policy?.(channel.name)?.owner;
      const input = {
        headers: forPlugin(headers, hidden, true),
        body: new TextDecoder().decode(raw),
        query,
        ...(botUsername && { bot_username: botUsername }),
        ...(owner && { owner }),
      };
      const out = pluginOutput(
        channel.plugin,
        "parse_incoming",
        Parsed,
        await host.callRaw(channel.plugin, "parse_incoming", JSON.stringify(input)),
      );
      parsed = { messages: this.answerable(channel, out.messages), ...(out.reply && { reply: out.reply }) };
    } catch (e) {
      log.error("parse_incoming failed", { channel: channel.name, plugin: channel.plugin, error: describeError(e) });
      return fail(new ExoError("plugin_error", `channel ${channel.name}: the plugin could not read this request`));
    }
    // Button presses are answers, not messages: handed over (after the signature check above), never stored.
    const presses = parsed.messages.filter((m) => m.action !== undefined);
    if (presses.length > 0) {
      parsed = { ...parsed, messages: parsed.messages.filter((m) => m.action === undefined) };
      for (const m of presses) {
        await this.deps
          .onAction?.(channel.name, m)
          .catch((e: unknown) => log.warn("button press failed", { channel: channel.name, error: describeError(e) }));
      }
    }
    // The http channel answers in this response, so its caller waits for the turn: when the turn queue
    // is full it is told so (429) before anything is stored, like the WebSocket and the OpenAI endpoint.
    if (plugin.description.channel.id === "http") {
      const busy = parsed.messages
        .map((m) => this.deps.runner.refusal(this.deps.route(addressOf(channel.name, m)).session))
        .find((b) => b !== null);
      if (busy) return fail(busy);
    }
    const accepted: InboundMessage[] = [];
    for (const m of parsed.messages) {
      // Claimed first, so a retry pass between the store and the delivery below leaves it to this webhook.
      const id = recordId(channel.name, m);
      if (!this.claim(id)) continue;
      // Stored before it is acknowledged: a crash after the 200 still finds it pending.
      const fresh = await this.deps.store
        .acceptInbound({ id, channel: channel.name, payload: JSON.stringify(m), received_at: Date.now() })
        .catch((e: unknown) => {
          this.delivering.delete(id);
          throw e;
        });
      if (fresh) accepted.push(m);
      else this.delivering.delete(id);
    }
    // A handshake or a refusal (Discord PING, a malformed body): the plugin's own answer, nothing to run.
    if (parsed.messages.length === 0 && parsed.reply)
      return { status: parsed.reply.status, headers: replyHeaders(parsed.reply.headers), body: parsed.reply.body };
    if (plugin.description.channel.id === "http") {
      for (const m of accepted) this.announce(channel, m);
      return this.answerInline(channel, accepted, parsed.messages.length - accepted.length);
    }
    // Several gateways (src/cluster/): on the work queue before the acknowledgement; a resend of a
    // message still waiting is published again (JetStream's Nats-Msg-Id makes it one).
    if (this.deps.workQueue) {
      for (const m of accepted) this.delivering.delete(recordId(channel.name, m));
      const queued = await this.enqueue(channel, parsed.messages, accepted);
      if (queued) return queued;
      if (parsed.reply)
        return { status: parsed.reply.status, headers: replyHeaders(parsed.reply.headers), body: parsed.reply.body };
      return json(200, { ok: true, accepted: accepted.length });
    }
    // Under load a message waits in the store (./intake.ts): its claim is the intake's to take again.
    for (const m of accepted) {
      const id = recordId(channel.name, m);
      this.delivering.delete(id);
      this.intake.offer(channel, id, m);
    }
    if (parsed.reply)
      return { status: parsed.reply.status, headers: replyHeaders(parsed.reply.headers), body: parsed.reply.body };
    return json(200, { ok: true, accepted: accepted.length });
  }

  /** Publishes the webhook's messages that still wait for a first delivery; a 503 answer when NATS does not take one. */
  private async enqueue(
    channel: ChannelSpec,
    all: InboundMessage[],
    accepted: InboundMessage[],
  ): Promise<WebhookResponse | null> {
    const q = this.deps.workQueue!;
    for (const m of all) {
      const id = recordId(channel.name, m);
      if (!accepted.includes(m)) {
        const rec = await this.deps.store.getInbound(id).catch(() => null);
        if (!rec || rec.attempts > 0 || rec.dead_at !== null) continue;
      }
      try {
        await q.publish(id, this.deps.route(addressOf(channel.name, m)).session);
      } catch (e) {
        this.deps.log.warn("webhook not acknowledged: the work queue did not take it", {
          channel: channel.name,
          message: m.id,
          error: describeError(e),
        });
        return fail(e instanceof ExoError ? e : new ExoError("unavailable", describeError(e)));
      }
    }
    return null;
  }

  /**
   * The messages a plugin reported that the host can answer. One without what a reply needs (an id,
   * an account, a peer — a platform payload with odd or missing fields) is logged and ignored, and
   * the webhook is still acknowledged: the platform would otherwise retry it, and Telegram holds
   * back every later update behind it.
   */
  private answerable(channel: ChannelSpec, reported: unknown[]): InboundMessage[] {
    const out: InboundMessage[] = [];
    for (const raw of reported) {
      const r = v.safeParse(Message, raw);
      if (r.success) {
        out.push(r.output);
        continue;
      }
      const issue = r.issues[0];
      const field = issue.path?.map((p) => String(p.key)).join(".") ?? "";
      this.deps.log.warn("channel message ignored: the plugin reported it without what a reply needs", {
        channel: channel.name,
        field,
        problem: issue.message,
      });
      this.deps.metrics?.inc("exoclaw_channel_ignored_total", { channel: channel.name });
    }
    return out;
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
    if (
      q.get("hub.mode") !== "subscribe" ||
      !want ||
      given === null ||
      challenge === null ||
      !createTokenCheck(want)(given)
    ) {
      this.limiter.recordFailure(bucket);
      return fail(new ExoError("forbidden", "forbidden: hub.mode, hub.verify_token or hub.challenge is wrong"));
    }
    return { status: 200, headers: { "content-type": "text/plain" }, body: challenge };
  }

  /** Announces an admitted message on the bus (SPEC §12); best effort. A refused one is never announced. */
  private announce(channel: ChannelSpec, m: InboundMessage): void {
    this.deps.bus
      ?.publish(inboundSubject(channel.name, m.account, m.peer), packMsgpack({ channel: channel.name, ...m }))
      .catch(() => {});
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
    const id = recordId(channel.name, m);
    this.deps.metrics?.inc("exoclaw_channel_refused_total", { channel: channel.name, reason: verdict.reason });
    log.debug("channel message refused", {
      channel: channel.name,
      message: m.id,
      reason: verdict.reason,
      person: personFor(channel.name, m) ?? personKey(channel.name, m.account, m.peer),
    });
    // The notice first: once the message is done, it is fully handled (a crash in between leaves it
    // pending, and the retry refuses it again without a notice).
    // A platform that shows an unanswered message as waiting (Discord's "thinking…") always gets one.
    const mustAnswer = this.deps.host.get(channel.plugin)?.description.channel?.must_answer === true;
    const perMinute = this.deps.policy?.(channel.name)?.rate_per_minute ?? DEFAULT_POLICY.rate_per_minute;
    const notice = verdict.notice ?? (mustAnswer ? refusalNotice(verdict.reason, perMinute) : undefined);
    if (notice !== undefined) {
      const sent = await this.send(channel, m, notice).catch(
        (e: unknown): SendVerdict => ({ ok: false, error: describeError(e), permanent: false }),
      );
      if (!sent.ok)
        log.warn("channel notice not sent", {
          channel: channel.name,
          message: m.id,
          reason: verdict.reason,
          error: sent.error,
        });
    }
    await store.completeInbound(id).catch(() => {});
  }

  private track(p: Promise<unknown>): void {
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
    return fail(new ExoError("rate_limited", "too many failed verifications", { data: { retry_after_ms: wait } }));
  }

  /** The `http` channel: run the turn now and put the reply in the response. */
  private async answerInline(
    channel: ChannelSpec,
    accepted: InboundMessage[],
    duplicates: number,
  ): Promise<WebhookResponse> {
    const replies = [];
    try {
      for (const m of accepted) {
        const out = await this.turn(channel, m);
        await this.deps.store.completeInbound(recordId(channel.name, m));
        replies.push({ id: m.id, peer: m.peer, session: out.session, text: out.text, stop_reason: out.stop_reason });
      }
    } finally {
      for (const m of accepted) this.delivering.delete(recordId(channel.name, m));
    }
    return json(200, { replies, duplicates });
  }

  /** Starts waiting channel messages in free places (the retry loop's kick; see ./intake.ts). */
  drain(): void {
    // On the work queue, the queue starts deliveries (every gateway pulls it).
    if (!this.deps.workQueue) this.intake.drain();
  }

  /** Shutdown: no new delivery starts; waiting messages stay in the store for the next start. */
  close(): void {
    this.intake.close();
  }

  /** Runs the message's turn; `said` is the last error the turn reported (a store refusal has no provider error). */
  private async turn(channel: ChannelSpec, m: InboundMessage) {
    const route = this.deps.route(addressOf(channel.name, m));
    let said: string | undefined;
    const out = await this.deps.runner.run(
      {
        agent: route.agent,
        content: m.text,
        person: personFor(channel.name, m),
        inboundId: recordId(channel.name, m),
        address: {
          key: route.session,
          agent: route.agent,
          channel: channel.name,
          account: m.account,
          peer: m.peer,
          thread: m.thread ?? null,
        },
      },
      // Bounded by the intake (and the http channel's check before it stores), so never refused here.
      {
        signal: new AbortController().signal,
        emit: (e) => {
          if (e.event === "error") said = e.data.message;
        },
        busy: "wait",
      },
    );
    return { ...out, said };
  }

  /**
   * format_outgoing → each request through the plugin's allowlist, read as the plugin declared
   * (`channel.send_result`). Stops at the first refusal and returns it; throws when the plugin fails.
   */
  private async send(
    channel: ChannelSpec,
    m: InboundMessage,
    text: string,
    buttons?: readonly { text: string; data: string }[],
    notice = false,
  ): Promise<SendVerdict> {
    const { host } = this.deps;
    const to = {
      account: m.account,
      peer: m.peer,
      ...(m.guild && { guild: m.guild }),
      ...(m.team && { team: m.team }),
      ...(m.thread && { thread: m.thread }),
    };
    const formatted = pluginOutput(
      channel.plugin,
      "format_outgoing",
      Outgoing,
      await host.callRaw(
        channel.plugin,
        "format_outgoing",
        JSON.stringify({ to, text, in_reply_to: m.id, ...(buttons && { buttons }), ...(notice && { notice: true }) }),
      ),
    );
    const style = host.get(channel.plugin)?.description.channel?.send_result ?? "http";
    const fillable = sendSecrets(channel.secrets());
    let previous: string | undefined;
    for (const request of formatted.requests) {
      // A two-step send (Discord: open the DM, then post in it) names the first answer's id in the second URL.
      const r = chainRequest(request, previous);
      if (typeof r === "string") return { ok: false, error: r, permanent: false };
      // The reply and the inbound text are model/user words: a placeholder they name is never filled.
      const answer = await host.send(channel.plugin, r, fillable, JSON.stringify([text, m.text]));
      const verdict = readSendResult(style, answer, this.now());
      if (!verdict.ok) return verdict;
      previous = answer.body;
    }
    return { ok: true };
  }

  /**
   * Sends a message that answers nothing (an approval request to the channel's owner), with buttons
   * when the plugin declares it supports them. Not stored and not retried: the request stays
   * answerable on every other surface. Throws when the plugin fails; a refusal is the verdict.
   */
  async notify(
    channel: ChannelSpec,
    to: { account: string; peer: string },
    text: string,
    buttons: readonly { text: string; data: string }[] = [],
  ): Promise<SendVerdict> {
    const withButtons = this.deps.host.get(channel.plugin)?.description.channel?.buttons === true && buttons.length > 0;
    return this.send(
      channel,
      { id: `notice-${Date.now()}`, account: to.account, peer: to.peer, text: "" },
      text,
      withButtons ? buttons : undefined,
      true,
    );
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /**
   * Takes a stored message in the store for this process's delivery (several gateway workers read the
   * same pending messages); false — and the local claim dropped — when another worker holds it.
   */
  private async claimStored(id: string): Promise<boolean> {
    const mine = await this.deps.store.claimInbound(id, CLAIM_HOLDER, STORE_CLAIM_MS).catch(() => false);
    if (mine) {
      this.storeClaims.add(id);
      this.elsewhere.delete(id);
    } else {
      this.delivering.delete(id);
      // Left alone for a while (the intake's drain and the retry loop skip it): asking again at once
      // would loop — a drain, a refused claim, a drain — without ever yielding.
      if (this.elsewhere.size >= 10_000)
        for (const [k, until] of this.elsewhere) if (until <= this.now()) this.elsewhere.delete(k);
      this.elsewhere.set(id, this.now() + ELSEWHERE_MS);
    }
    return mine;
  }

  /** Takes `id` for one delivery; false when it is being delivered already. */
  private claim(id: string): boolean {
    if (this.delivering.has(id)) return false;
    this.delivering.add(id);
    return true;
  }

  /** The "open" channels' hourly people counts (`status`). */
  openStatus(): Record<string, { people_this_hour: number; refused_full: number }> {
    return this.access.openStatus();
  }

  /** Whether a message is being delivered now (the retry loop leaves it alone). */
  isDelivering(id: string): boolean {
    if (this.delivering.has(id)) return true;
    const until = this.elsewhere.get(id);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.elsewhere.delete(id);
    return false;
  }

  /**
   * Tries a stored message again (the retry loop, `inbox retry`): with its stored reply only the
   * send is repeated — the sender was admitted and the turn (model calls, tools, history) ran.
   * Without one the sender's standing is judged again, without counting against the rate or sending
   * a notice (a revoked person, or a message accepted just before a crash, gets no turn), and the
   * turn runs. Never throws; the outcome is recorded in the store.
   */
  async deliver(channel: ChannelSpec, rec: PendingInbound): Promise<DeliveryOutcome> {
    if (!this.claim(rec.id)) return { state: "busy" };
    if (!(await this.claimStored(rec.id))) return { state: "busy" };
    let m: InboundMessage;
    try {
      m = v.parse(Message, JSON.parse(rec.payload));
    } catch {
      return this.settle(channel.name, rec.id, async () =>
        this.failed(channel.name, rec.id, rec.attempts, {
          ok: false,
          error: "the stored message is unreadable",
          permanent: true,
        }),
      );
    }
    return this.attempt(channel, m, { reply: rec.reply, attempts: rec.attempts, fresh: false });
  }

  /**
   * One delivery of a claimed message: judge → turn → store the reply → format_outgoing → send (or
   * only the send, with a stored reply). `fresh`: it arrived just now (a notice may be sent, it is
   * announced); `attempts`: its failed attempts so far.
   */
  private attempt(
    channel: ChannelSpec,
    m: InboundMessage,
    prior: { reply: string | null; attempts: number; fresh: boolean },
  ): Promise<DeliveryOutcome> {
    const { store } = this.deps;
    const id = recordId(channel.name, m);
    return this.settle(channel.name, id, async () => {
      try {
        let text = prior.reply;
        if (text === null) {
          let verdict: Admission;
          try {
            verdict = await this.judge(channel, m, !prior.fresh);
          } catch (e) {
            throw new Error(`the access check failed: ${describeError(e)}`);
          }
          if (!verdict.admit) {
            await this.refuse(channel, m, verdict);
            return { state: "refused" };
          }
          if (prior.fresh) this.announce(channel, m);
          const out = await this.turn(channel, m);
          // A turn cut by shutdown has no answer to send: the message stays as it was — not a failed
          // attempt — so the next start runs it before its session's later messages.
          if (out.stop_reason === "cancelled" && out.cancelled_by === "shutdown") return { state: "busy" };
          // Cancelled on purpose (chat.cancel {session}, on any gateway): the message is done, nothing is
          // sent, and it is never run again; the history keeps what the turn said, marked `cancelled`.
          if (out.stop_reason === "cancelled") {
            await store.completeInbound(id);
            return { state: "cancelled" };
          }
          // A failed turn stored no answer: it runs again.
          if (out.stop_reason === "error")
            throw new Error(out.error?.message ?? `the turn ended: error${out.said ? ` (${out.said})` : ""}`);
          // Saved by the runner with the turn's history, in one transaction, before the send: from here
          // on a failure (or a crash) re-sends this text, it does not ask the model again.
          text = out.text;
          // A budget refusal before any answer: the person is told so (saved, so a retry says the same).
          if (out.stop_reason === "budget" && text.trim() === "") {
            text = BUDGET_NOTICE;
            await store.saveInboundReply(id, text);
          }
        }
        if (text.trim() === "") {
          // Nothing to say: no empty message is sent (the platforms refuse one), unless the platform
          // shows the message as waiting until it is answered.
          if (this.deps.host.get(channel.plugin)?.description.channel?.must_answer !== true) {
            await store.completeInbound(id);
            return { state: "sent" };
          }
          text = EMPTY_REPLY_NOTICE;
        }
        // Cluster-wide once: a gateway that raced this one (a redelivery) finds the reply claimed.
        const q = this.deps.workQueue;
        if (q && !(await q.claimReply(id))) {
          // Sent already, but its completion failed after the send (the store lost a leader): done now.
          if (await q.replySent?.(id)) {
            await store.completeInbound(id);
            return { state: "sent" };
          }
          return { state: "busy" };
        }
        const sent = await this.send(channel, m, text).catch(async (e: unknown) => {
          await q?.releaseReply(id).catch(() => {});
          throw e;
        });
        if (!sent.ok) {
          await q?.releaseReply(id).catch(() => {});
          return this.failed(channel.name, id, prior.attempts, sent);
        }
        await q
          ?.markReplySent?.(id)
          .catch((e: unknown) =>
            this.deps.log.warn("could not mark a sent reply as sent", { message: id, error: describeError(e) }),
          );
        await store.completeInbound(id);
        this.deps.metrics?.inc("exoclaw_channel_deliveries_total", { channel: channel.name, result: "sent" });
        return { state: "sent" };
      } catch (e) {
        return this.failed(channel.name, id, prior.attempts, { ok: false, error: describeError(e), permanent: false });
      }
    });
  }

  /** Runs a claimed delivery, then releases the claim and reports the outcome. */
  private async settle(channel: string, id: string, run: () => Promise<DeliveryOutcome>): Promise<DeliveryOutcome> {
    let outcome: DeliveryOutcome = { state: "busy" };
    try {
      outcome = await run();
      return outcome;
    } finally {
      this.delivering.delete(id);
      if (this.storeClaims.delete(id)) void this.deps.store.releaseInbound(id, CLAIM_HOLDER).catch(() => {}); // else it expires
      try {
        this.deps.onDelivery?.(outcome);
      } catch (e) {
        this.deps.log.error("delivery listener failed", { channel, error: describeError(e) });
      }
    }
  }

  /** Records a failed attempt: the next one is scheduled, or the message is dead-lettered. */
  private async failed(channel: string, id: string, attempts: number, refusal: SendRefusal): Promise<DeliveryOutcome> {
    const { store, log } = this.deps;
    const at = this.now();
    const retryAt = nextAttemptAt(attempts + 1, refusal, at, this.deps.retry ?? DEFAULT_RETRY_POLICY);
    await store
      .failInbound(id, { error: refusal.error, retry_at: retryAt, at })
      .catch((e: unknown) =>
        log.error("could not record a failed delivery", { channel, message: id, error: describeError(e) }),
      );
    if (retryAt === null) {
      this.deps.metrics?.inc("exoclaw_channel_deliveries_total", { channel, result: "dead_lettered" });
      log.warn("channel delivery failed; dead-lettered: see `exoclaw inbox list`, then `inbox retry` or `inbox drop`", {
        channel,
        message: id,
        error: refusal.error,
        permanent: refusal.permanent,
        attempts: attempts + 1,
      });
      return { state: "dead", error: refusal.error };
    }
    this.deps.metrics?.inc("exoclaw_channel_deliveries_total", { channel, result: "failed" });
    log.warn("channel delivery failed; it stays pending and will be retried", {
      channel,
      message: id,
      error: refusal.error,
      attempts: attempts + 1,
      retry_in_ms: retryAt - at,
    });
    return { state: "pending", error: refusal.error, next_at: retryAt };
  }
}

/**
 * A channel plugin's answer read against its schema. Anything else (not JSON, another shape; found
 * by tests/fuzz/plugins.test.ts: a bare JSON parse error reached the log without the plugin's name)
 * throws an error naming the plugin, the export and where the shape is wrong.
 */
function pluginOutput<S extends v.GenericSchema>(
  plugin: string,
  fn: string,
  schema: S,
  text: string,
): v.InferOutput<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`plugin ${plugin}: ${fn} returned invalid JSON (${Buffer.byteLength(text)} bytes)`);
  }
  const r = v.safeParse(schema, json);
  // The path and reason can quote the plugin's own keys and values: cut short, control characters escaped.
  if (!r.success)
    throw new Error(
      `plugin ${plugin}: ${fn} returned an invalid shape: ${escapeControl(`${issuePath(r.issues[0])}: ${describeIssue(r.issues[0])}`.slice(0, 200))}`,
    );
  return r.output;
}
