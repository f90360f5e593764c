/**
 * Approval requests on chat platforms (issue 16): every channel with an `owner` gets each new
 * request as a message to that owner, with Allow / Deny buttons where its plugin supports them
 * (`channel.buttons`; Telegram's inline keyboard), or the CLI commands to answer otherwise. A press
 * arrives as a verified webhook like any other message; it decides the request only when the presser
 * is that channel's configured owner — anyone else's press (a forwarded message, a group) is refused
 * and logged. The press is answered in the webhook's own response at once; the owner is then told what
 * was decided in a follow-up message that nothing waits for (a slow platform API delays only that; a
 * lost one is logged).
 */
import { personKey } from "../core/index.ts";
import type { ChannelConfig } from "../config/index.ts";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { ApprovalBroker, PendingApproval } from "./broker.ts";

/** Button data: `approval:allow:<id>` / `approval:deny:<id>` (Telegram allows 64 bytes). */
const DATA = /^approval:(allow|deny):(ap_[0-9a-f]{1,40})$/;

export interface OwnerDeps {
  broker: ApprovalBroker;
  channels: () => Readonly<Record<string, ChannelConfig>>;
  /** Sends a message to a channel's peer (the pipeline's notify); buttons are dropped where unsupported. */
  send: (
    channel: string,
    to: { account: string; peer: string },
    text: string,
    buttons: { text: string; data: string }[],
  ) => Promise<{ ok: boolean; error?: string }>;
  log: Logger;
}

export interface ButtonPress {
  account: string;
  peer: string;
  sender?: string | undefined;
  action?: { data: string } | undefined;
}

export class OwnerApprovals {
  constructor(private readonly deps: OwnerDeps) {}

  /** Tells every configured owner about a new request. Never throws. */
  announce(p: PendingApproval): void {
    for (const [channel, c] of Object.entries(this.deps.channels())) {
      if (!c.owner) continue;
      const account = p.origin?.channel === channel ? p.origin.account : "bot";
      const text =
        `Approval needed: agent ${p.agent} wants to call ${p.tool} (${p.why}).\nInput: ${p.input}\n` +
        `Session ${p.session}. No answer within ${Math.round((p.expires_at - p.created_at) / 1000)} s = denied. ` +
        `(Or: exoclaw approvals allow ${p.id} / deny ${p.id})`;
      const buttons = [
        { text: "Allow", data: `approval:allow:${p.id}` },
        { text: "Deny", data: `approval:deny:${p.id}` },
      ];
      void this.deps
        .send(channel, { account, peer: c.owner }, text, buttons)
        .then((r) => {
          if (!r.ok)
            this.deps.log.warn("approval request not delivered to the owner", {
              channel,
              approval: p.id,
              error: r.error,
            });
        })
        .catch((e: unknown) =>
          this.deps.log.warn("approval request not delivered to the owner", {
            channel,
            approval: p.id,
            error: describeError(e),
          }),
        );
    }
  }

  /** A verified button press on `channel`. Decides only for that channel's owner; never throws for a stranger. */
  async press(channel: string, m: ButtonPress): Promise<void> {
    const match = DATA.exec(m.action?.data ?? "");
    if (!match) return;
    const owner = this.deps.channels()[channel]?.owner ?? "";
    const presser = m.sender ?? m.peer;
    if (owner === "" || personKey(channel, m.account, presser) !== personKey(channel, m.account, owner)) {
      this.deps.log.warn("approval button refused: the presser is not this channel's owner", {
        channel,
        presser: personKey(channel, m.account, presser),
        approval: match[2],
      });
      return;
    }
    const allow = match[1] === "allow";
    const to = { account: m.account, peer: m.peer };
    let text: string;
    try {
      const r = await this.deps.broker.resolve(match[2]!, allow, {
        by: `owner:${personKey(channel, m.account, presser)}`,
      });
      text = `${r.state === "allowed" ? "Allowed" : "Denied"}: ${r.tool} (${r.id}).`;
    } catch (e) {
      text = describeError(e);
    }
    // Not awaited: the press is answered in the webhook's response (Discord wants it within 3 s, Slack
    // its 2xx within 3 s), so a slow platform API delays only this follow-up message, which is logged if lost.
    this.tell(channel, to, text, match[2]!);
  }

  /** Sends the presser what became of their press, in the background; a failure is logged. */
  private tell(channel: string, to: { account: string; peer: string }, text: string, approval: string): void {
    const lost = (error: string | undefined) =>
      this.deps.log.warn("approval decision not delivered to the owner", { channel, approval, error });
    void Promise.resolve()
      .then(() => this.deps.send(channel, to, text, []))
      .then((r) => {
        if (!r.ok) lost(r.error);
      })
      .catch((e: unknown) => lost(describeError(e)));
  }
}
