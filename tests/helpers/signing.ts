/**
 * Webhook signatures as the platforms make them (wire-formats B2–B4), for tests that post genuine or
 * forged requests: Slack's `v0=` HMAC-SHA256 over `v0:<ts>:<raw body>`, Discord's Ed25519 over
 * `<ts><raw body>` (the RFC 8032 TEST 1 key pair, so a fresh timestamp can be signed), and Meta's
 * `sha256=` HMAC over the raw body for WhatsApp. Each signs the exact bytes given.
 */
import { createHmac, createPrivateKey, type KeyObject, sign } from "node:crypto";

/** The signing secret of the Slack examples (wire-formats B4). */
export const SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
/** The app secret the WhatsApp tests configure. */
export const WHATSAPP_APP_SECRET = "test_app_secret";
/** RFC 8032 TEST 1: the public key to configure, and its secret key to sign with. */
export const DISCORD_PUBLIC_KEY = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
export const DISCORD_KEY: KeyObject = createPrivateKey({
  key: Buffer.from(
    "302e020100300506032b6570042204209d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "hex",
  ),
  format: "der",
  type: "pkcs8",
});

type Bytes = string | Uint8Array;
/** Now, in Unix seconds, as the platforms' timestamp headers carry it. */
export const nowS = (): number => Math.floor(Date.now() / 1000);

const hmac = (key: string, ...parts: Bytes[]): string => {
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

/** `X-Slack-Signature` for `body` sent at `ts`. */
export const slackSignature = (body: Bytes, ts: string | number, secret = SLACK_SIGNING_SECRET): string =>
  `v0=${hmac(secret, `v0:${ts}:`, body)}`;

/** Slack's two signature headers for `body`, timestamped now unless `ts` is given. */
export const slackHeaders = (
  body: Bytes,
  ts: string | number = nowS(),
  secret = SLACK_SIGNING_SECRET,
): Record<string, string> => ({
  "x-slack-request-timestamp": String(ts),
  "x-slack-signature": slackSignature(body, ts, secret),
});

/** `X-Signature-Ed25519` (hex) for `body` sent at `ts`. */
export const discordSignature = (body: Bytes, ts: string, key: KeyObject = DISCORD_KEY): string =>
  sign(null, Buffer.concat([Buffer.from(ts), Buffer.from(body)]), key).toString("hex");

/** Discord's two signature headers for `body`, timestamped now unless `ts` is given. */
export const discordHeaders = (
  body: Bytes,
  key: KeyObject = DISCORD_KEY,
  ts = String(nowS()),
): Record<string, string> => ({
  "x-signature-timestamp": ts,
  "x-signature-ed25519": discordSignature(body, ts, key),
});

/** `X-Hub-Signature-256` for `body` (WhatsApp, Meta's webhooks). */
export const whatsappSignature = (body: Bytes, secret = WHATSAPP_APP_SECRET): string => `sha256=${hmac(secret, body)}`;
