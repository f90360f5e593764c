/**
 * Webhook signature verification (SPEC §7), done by the host with host-held secrets before any
 * plugin sees the body. Every scheme works on the raw request bytes (a parse-and-reserialize step
 * would change key order, whitespace or escapes and break the signature), and every comparison is
 * constant-time.
 *
 * Secret roles per scheme (the channel config maps each role to a credential name):
 * telegram-secret → `webhook_secret`; discord-ed25519 → `public_key` (hex);
 * meta-hmac-sha256 → `app_secret`; slack-v0 → `signing_secret`; the WhatsApp GET handshake →
 * `verify_token`. These verification roles stay in the host: they are never filled into a plugin's
 * outgoing requests (see VERIFICATION_ROLES).
 */
import { createHmac, createPublicKey, timingSafeEqual, verify as verifySignature } from "node:crypto";

export type VerifyScheme = "none" | "telegram-secret" | "discord-ed25519" | "meta-hmac-sha256" | "slack-v0";

export interface WebhookRequest {
  /** Header names in lower case. */
  headers: Readonly<Record<string, string>>;
  rawBody: Uint8Array;
}

export type Verdict = { ok: true } | { ok: false; reason: string };

/** Slack's replay window: requests older or newer than this are refused. */
export const SLACK_MAX_SKEW_S = 300;
/** The same window for Discord's signed timestamp: a captured interaction cannot be replayed later. */
export const DISCORD_MAX_SKEW_S = 300;

/** Secret roles that only verify inbound requests: never sent anywhere, never fillable by a plugin. */
export const VERIFICATION_ROLES: ReadonlySet<string> = new Set([
  "webhook_secret",
  "public_key",
  "app_secret",
  "signing_secret",
  "verify_token",
]);

const fail = (reason: string): Verdict => ({ ok: false, reason });

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function hmacHex(key: string, ...parts: (string | Uint8Array)[]): string {
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

const fromHex = (s: string) => (/^(?:[0-9a-f]{2})+$/i.test(s) ? Buffer.from(s, "hex") : null);

/** Raw 32-byte Ed25519 public key → a KeyObject (SPKI DER prefix, no extra dependency). */
function ed25519Key(hex: string) {
  const raw = fromHex(hex);
  if (!raw || raw.length !== 32) return null;
  return createPublicKey({
    key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]),
    format: "der",
    type: "spki",
  });
}

/**
 * Checks one webhook request. `secret(role)` returns the host-held value or null; a missing secret
 * fails closed. `nowS` is injectable for the fixed timestamps of test vectors.
 */
export function verifyWebhook(
  scheme: VerifyScheme,
  req: WebhookRequest,
  secret: (role: string) => string | null,
  nowS = Math.floor(Date.now() / 1000),
): Verdict {
  const h = req.headers;
  switch (scheme) {
    case "none":
      return { ok: true };
    case "telegram-secret": {
      const want = secret("webhook_secret");
      if (!want) return fail("no webhook_secret configured for this channel");
      const got = h["x-telegram-bot-api-secret-token"];
      if (got === undefined) return fail("missing X-Telegram-Bot-Api-Secret-Token");
      // Compare digests so the length of the secret does not leak either.
      return equalBytes(Buffer.from(hmacHex(want, got), "hex"), Buffer.from(hmacHex(want, want), "hex"))
        ? { ok: true }
        : fail("wrong secret token");
    }
    case "discord-ed25519": {
      const hexKey = secret("public_key");
      const key = hexKey ? ed25519Key(hexKey) : null;
      if (!key) return fail("no valid public_key configured for this channel");
      const sig = fromHex(h["x-signature-ed25519"] ?? "");
      const ts = h["x-signature-timestamp"];
      if (!sig || sig.length !== 64 || ts === undefined || !/^\d+$/.test(ts))
        return fail("missing or malformed X-Signature-Ed25519 / X-Signature-Timestamp");
      if (Math.abs(nowS - Number(ts)) > DISCORD_MAX_SKEW_S) return fail("timestamp outside the 5-minute replay window");
      const ok = verifySignature(null, Buffer.concat([Buffer.from(ts, "utf8"), req.rawBody]), key, sig);
      return ok ? { ok: true } : fail("invalid request signature");
    }
    case "meta-hmac-sha256": {
      const appSecret = secret("app_secret");
      if (!appSecret) return fail("no app_secret configured for this channel");
      const header = h["x-hub-signature-256"] ?? "";
      if (!header.startsWith("sha256=")) return fail("missing X-Hub-Signature-256");
      const got = fromHex(header.slice(7));
      const want = Buffer.from(hmacHex(appSecret, req.rawBody), "hex");
      return got && equalBytes(got, want) ? { ok: true } : fail("invalid signature");
    }
    case "slack-v0": {
      const signing = secret("signing_secret");
      if (!signing) return fail("no signing_secret configured for this channel");
      const ts = h["x-slack-request-timestamp"] ?? "";
      const header = h["x-slack-signature"] ?? "";
      if (!/^\d+$/.test(ts)) return fail("missing X-Slack-Request-Timestamp");
      if (Math.abs(nowS - Number(ts)) > SLACK_MAX_SKEW_S) return fail("timestamp outside the 5-minute replay window");
      if (!header.startsWith("v0=")) return fail("missing v0= signature");
      const got = fromHex(header.slice(3));
      const want = Buffer.from(hmacHex(signing, `v0:${ts}:`, req.rawBody), "hex");
      return got && equalBytes(got, want) ? { ok: true } : fail("invalid signature");
    }
    default: {
      const never: never = scheme;
      return fail(`unknown verification scheme ${String(never)}`);
    }
  }
}
