/**
 * Who may talk on a channel (SPEC §13), decided for each accepted message before anything reaches a
 * model:
 * - a group message (the plugin says `group`, or it has a `guild`) is answered only in a group the
 *   operator listed (`groups`: the chat/channel id or the guild id, "*" for all) and, with
 *   `require_mention`, only when it is addressed to the bot (the plugin says `mentioned`);
 * - a direct message is answered for `allow_from`, for everyone under "open", for approved people
 *   under "pairing" and "allowlist"; a stranger under "pairing" is sent a pairing code (see
 *   ./pairing.ts), under "allowlist" ignored;
 * - then each person may send `rate_per_minute` messages a minute (0 = unlimited); beyond that the
 *   message is refused, with one "slow down" notice a minute at most.
 * Rate windows are per process and kept in memory (a restart forgets them); they are bounded: at
 * most `rate_per_minute` times per person, and people idle for a minute are dropped.
 */
import { personKey } from "../core/index.ts";
import type { ChannelConfig } from "../config/index.ts";
import { MAX_PENDING_PER_CHANNEL, type Pairings } from "./pairing.ts";

/** What a channel message needs to be judged: the parts the plugin reported. */
export interface Addressed {
  account: string;
  peer: string;
  guild?: string | undefined;
  sender?: string | undefined;
  group?: boolean | undefined;
  mentioned?: boolean | undefined;
}

/** Why a message was refused; a label of `exoclaw_channel_refused_total`. */
export type RefusalReason =
  | "stranger"
  | "pairing_full"
  | "open_full"
  | "not_allowed"
  | "group_not_listed"
  | "not_mentioned"
  | "rate_limited";

export type Admission =
  | { admit: true }
  /** `notice`: the one short reply to send instead of a turn (a pairing code, a "slow down"). */
  | { admit: false; reason: RefusalReason; notice?: string };

/** The policy a channel without those keys gets (and what the schema defaults to). */
export const DEFAULT_POLICY: Pick<
  ChannelConfig,
  | "dm_policy"
  | "allow_from"
  | "groups"
  | "require_mention"
  | "rate_per_minute"
  | "max_pending_pairings"
  | "max_open_people_per_hour"
> = {
  dm_policy: "pairing",
  allow_from: [],
  groups: [],
  require_mention: true,
  rate_per_minute: 20,
  max_pending_pairings: MAX_PENDING_PER_CHANNEL,
  max_open_people_per_hour: 1000,
};

const HOUR = 3_600_000;

const MINUTE = 60_000;

export const isGroupMessage = (m: Addressed): boolean => m.group === true || m.guild !== undefined;

export function pairingNotice(code: string): string {
  return `Hi! This assistant answers only people its owner has approved. To ask for access, send them this pairing code: ${code} (it is valid for 1 hour).`;
}

export function slowDownNotice(perMinute: number): string {
  return `You are sending messages faster than this assistant answers (${perMinute} a minute). Please wait a minute.`;
}

/**
 * The short reply to a refused message on a platform that must answer every message (a Discord
 * interaction stays "thinking…" otherwise), when the refusal itself carries none.
 */
export function refusalNotice(reason: RefusalReason, perMinute: number): string {
  switch (reason) {
    case "group_not_listed":
    case "not_mentioned":
      return "This assistant does not answer here.";
    case "rate_limited":
      return slowDownNotice(perMinute);
    case "stranger":
    case "pairing_full":
    case "open_full":
    case "not_allowed":
      return "This assistant answers only people its owner has approved.";
  }
}

/** What a person over a budget is told instead of an answer (nothing reached a model). */
export const BUDGET_NOTICE =
  "Sorry, this assistant has reached its usage limit for now and cannot answer. Please try again later.";

export class ChannelAccess {
  /** Per channel and person: the times of their messages in the last minute, oldest first. */
  private readonly windows = new Map<string, number[]>();
  /** When each person was last told to slow down. */
  private readonly warned = new Map<string, number>();
  private lastSweep = 0;
  /** Per channel under "open": the people answered in the current hour, and those refused beyond the cap since the start. */
  private readonly open = new Map<string, { start: number; people: Set<string>; refused: number }>();

  constructor(
    private readonly pairings: Pairings,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Judges one message. `person` is its sender's id (`<channel>:<account>:<peer>`, as memory names
   * people). `retry`: the message was admitted before (a delivery retried after a failure or a
   * restart): the policy is checked again — a revoked person stays out — but it is not counted
   * against the rate and no notice is sent.
   */
  async admit(
    channel: string,
    policy: Partial<ChannelConfig> | undefined,
    m: Addressed,
    person: string | null,
    retry = false,
  ): Promise<Admission> {
    const p = { ...DEFAULT_POLICY, ...policy };
    const who = person ?? personKey(channel, m.account, m.peer);
    if (isGroupMessage(m)) {
      const listed = p.groups.some((g) => g === "*" || g === m.peer || (m.guild !== undefined && g === m.guild));
      if (!listed) return { admit: false, reason: "group_not_listed" };
      if (p.require_mention && m.mentioned !== true) return { admit: false, reason: "not_mentioned" };
    } else if (!this.allowedByConfig(p, m, who) && p.dm_policy !== "open" && !(await this.pairings.isApproved(who))) {
      if (p.dm_policy === "allowlist" || retry)
        return { admit: false, reason: p.dm_policy === "allowlist" ? "not_allowed" : "stranger" };
      const pending = await this.pairings.request(channel, who, p.max_pending_pairings);
      // Beyond the channel's cap of pending codes a stranger gets no code and no reply (a flood of
      // made-up peer ids must not grow the table or the bot's sends), only a count.
      if (!pending && !(await this.pairings.isApproved(who))) return { admit: false, reason: "pairing_full" };
      return { admit: false, reason: "stranger", ...(pending?.send && { notice: pairingNotice(pending.code) }) };
    } else if (
      p.dm_policy === "open" &&
      !retry &&
      !this.allowedByConfig(p, m, who) &&
      !this.openRoom(channel, who, p.max_open_people_per_hour)
    ) {
      return { admit: false, reason: "open_full" };
    }
    if (retry || p.rate_per_minute === 0) return { admit: true };
    return this.counted(`${channel}\n${who}`, p.rate_per_minute);
  }

  /**
   * Under "open" every new sender starts a session, history and memory: a flood of made-up peer ids
   * would grow them as fast as it is sent. At most `max` distinct people are answered per channel
   * and hour (someone already answered this hour always is); beyond it a new sender gets no reply,
   * only a count. Memory: at most `max` ids per channel.
   */
  private openRoom(channel: string, who: string, max: number): boolean {
    const t = this.now();
    let w = this.open.get(channel);
    if (!w) this.open.set(channel, (w = { start: t, people: new Set(), refused: 0 }));
    if (t - w.start >= HOUR || t < w.start) {
      w.start = t;
      w.people.clear();
    }
    if (w.people.has(who)) return true;
    if (w.people.size >= max) {
      w.refused++;
      return false;
    }
    w.people.add(who);
    return true;
  }

  /** Per "open" channel that had senders: people answered this hour, and senders refused beyond `max_open_people_per_hour` (for `status`). */
  openStatus(): Record<string, { people_this_hour: number; refused_full: number }> {
    return Object.fromEntries(
      [...this.open].map(([channel, w]) => [channel, { people_this_hour: w.people.size, refused_full: w.refused }]),
    );
  }

  private allowedByConfig(p: typeof DEFAULT_POLICY, m: Addressed, who: string): boolean {
    return p.allow_from.some((id) => id === m.peer || id === m.sender || id === who);
  }

  private counted(key: string, perMinute: number): Admission {
    const t = this.now();
    this.sweep(t);
    let times = this.windows.get(key);
    if (!times) this.windows.set(key, (times = []));
    while (times.length > 0 && times[0]! <= t - MINUTE) times.shift();
    if (times.length < perMinute) {
      times.push(t);
      return { admit: true };
    }
    const last = this.warned.get(key);
    if (last !== undefined && t - last < MINUTE) return { admit: false, reason: "rate_limited" };
    this.warned.set(key, t);
    return { admit: false, reason: "rate_limited", notice: slowDownNotice(perMinute) };
  }

  /** Once a minute: forget people who have not written for a minute. */
  private sweep(t: number): void {
    if (t - this.lastSweep < MINUTE) return;
    this.lastSweep = t;
    for (const [key, times] of this.windows) if ((times.at(-1) ?? 0) <= t - MINUTE) this.windows.delete(key);
    for (const [key, at] of this.warned) if (at <= t - MINUTE) this.warned.delete(key);
  }
}
