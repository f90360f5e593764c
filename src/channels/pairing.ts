/**
 * Pairing (SPEC §13): a stranger who writes to a channel under `dm_policy = "pairing"` is given a
 * code; the operator lets them in with `exoclaw pairing approve CODE`. Every record lives in the
 * store (so approvals survive restarts and a CLI without a gateway sees the same list); nothing is
 * cached here, so an edit made by another process counts at the next message.
 */
import { ExoError } from "../lib/errors.ts";
import type { Pairing, PairingStore } from "../store/index.ts";

/** A code is accepted this long after it was first handed out. */
export const PAIRING_CODE_TTL_MS = 60 * 60_000;
/** A stranger is sent their code at most once in this long, however often they write. */
export const PAIRING_RESEND_MS = 10 * 60_000;
/**
 * Pending codes per channel at once, unless the channel's `max_pending_pairings` says otherwise;
 * beyond it new strangers get no code and no reply (the list stays readable), and are counted.
 */
export const MAX_PENDING_PER_CHANNEL = 50;

/** No 0/O, 1/I: a code is read off a phone and typed into a terminal. 32 symbols, so no modulo bias. */
const ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LENGTH = 8;

export function newPairingCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(CODE_LENGTH));
  let code = "";
  for (const b of bytes) code += ALPHABET[b % 32] ?? "9";
  return code;
}

/** What the operator typed, as stored: upper case, without spaces or dashes. */
export function normalizeCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, "");
}

/** A record as the operator sees it (`pairing list`, `pairing.list`). */
export interface PairingView {
  person: string;
  channel: string;
  status: Pairing["status"];
  code?: string;
  created_at: number;
  expires_at?: number;
  approved_at?: number;
}

function view(p: Pairing): PairingView {
  return {
    person: p.person,
    channel: p.channel,
    status: p.status,
    ...(p.code !== null && { code: p.code }),
    created_at: p.created_at,
    ...(p.expires_at !== null && { expires_at: p.expires_at }),
    ...(p.approved_at !== null && { approved_at: p.approved_at }),
  };
}

export class Pairings {
  /** Requests in flight per person: two messages at once from one stranger get one code, sent once. */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** Per channel: strangers refused a code because the channel's pending codes were at the cap. */
  private readonly full = new Map<string, number>();

  constructor(
    private readonly store: PairingStore,
    private readonly now: () => number = Date.now,
  ) {}

  async isApproved(person: string): Promise<boolean> {
    return (await this.store.getPairing(person))?.status === "approved";
  }

  /**
   * A stranger wrote: their pending code (a new one when they had none or it expired) and whether to
   * send it now (at most once per PAIRING_RESEND_MS). null when the channel has too many pending codes.
   */
  request(
    channel: string,
    person: string,
    max = MAX_PENDING_PER_CHANNEL,
  ): Promise<{ code: string; send: boolean } | null> {
    const prev = this.inFlight.get(person) ?? Promise.resolve();
    const next = prev.then(() => this.requestNow(channel, person, max));
    const settled = next.catch(() => {});
    this.inFlight.set(person, settled);
    void settled.then(() => {
      if (this.inFlight.get(person) === settled) this.inFlight.delete(person);
    });
    return next;
  }

  private async requestNow(
    channel: string,
    person: string,
    max: number,
  ): Promise<{ code: string; send: boolean } | null> {
    const t = this.now();
    const had = await this.store.getPairing(person);
    if (had?.status === "approved") return null;
    if (had && had.code !== null && (had.expires_at ?? 0) > t) {
      if (had.notified_at !== null && t - had.notified_at < PAIRING_RESEND_MS) return { code: had.code, send: false };
      await this.store.savePairing({ ...had, notified_at: t });
      return { code: had.code, send: true };
    }
    // Expired codes of this channel are forgotten before counting what is still pending.
    let pending = 0;
    for (const p of await this.store.listPairings({ channel, status: "pending" })) {
      if ((p.expires_at ?? 0) <= t) await this.store.deletePairing(p.person);
      else pending++;
    }
    if (pending >= max) {
      this.full.set(channel, (this.full.get(channel) ?? 0) + 1);
      return null;
    }
    let code = newPairingCode();
    while (await this.store.pairingByCode(code)) code = newPairingCode();
    await this.store.savePairing({
      person,
      channel,
      status: "pending",
      code,
      created_at: t,
      expires_at: t + PAIRING_CODE_TTL_MS,
      notified_at: t,
      approved_at: null,
    });
    return { code, send: true };
  }

  /** Per channel with any: pending codes now, and strangers refused since the start because the cap was reached (for `status`). */
  async status(): Promise<Record<string, { pending: number; refused_full: number }>> {
    const t = this.now();
    const out: Record<string, { pending: number; refused_full: number }> = {};
    for (const p of await this.store.listPairings({ status: "pending" })) {
      if ((p.expires_at ?? 0) <= t) continue;
      (out[p.channel] ??= { pending: 0, refused_full: 0 }).pending++;
    }
    for (const [channel, n] of this.full) (out[channel] ??= { pending: 0, refused_full: 0 }).refused_full = n;
    return out;
  }

  /** Lets the person holding `code` in. Throws ExoError("not_found") for an unknown or expired code. */
  async approve(code: string): Promise<PairingView> {
    const wanted = normalizeCode(code);
    const t = this.now();
    const p = wanted === "" ? null : await this.store.pairingByCode(wanted);
    if (!p || p.status !== "pending" || (p.expires_at ?? 0) <= t) {
      throw new ExoError(
        "not_found",
        `no pending pairing code ${wanted || '""'} (codes expire an hour after they are sent; the person gets a new one by writing again)`,
        {
          data: { code: wanted },
        },
      );
    }
    const approved: Pairing = {
      ...p,
      status: "approved",
      code: null,
      expires_at: null,
      notified_at: null,
      approved_at: t,
    };
    await this.store.savePairing(approved);
    return view(approved);
  }

  /** Forgets a person (approved or pending): their next message is a stranger's again. Throws not_found. */
  async revoke(person: string): Promise<PairingView> {
    const p = await this.store.getPairing(person);
    if (!p || !(await this.store.deletePairing(person)))
      throw new ExoError("not_found", `no pairing for ${person} (see \`exoclaw pairing list\`)`, { data: { person } });
    return view(p);
  }

  /** Approved people and pending codes that have not expired, oldest first. */
  async list(channel?: string): Promise<PairingView[]> {
    const t = this.now();
    const all = await this.store.listPairings(channel === undefined ? {} : { channel });
    return all.filter((p) => p.status === "approved" || (p.expires_at ?? 0) > t).map(view);
  }
}
