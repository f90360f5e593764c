import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Constant-time token check that does not leak the token's length: both sides are HMAC'd with a
 * per-process random key, so the comparison always runs over two 32-byte digests.
 */
export function createTokenCheck(expected: string): (given: string) => boolean {
  const key = randomBytes(32);
  const digest = (s: string) => createHmac("sha256", key).update(s, "utf8").digest();
  const want = digest(expected);
  return (given) => expected !== "" && timingSafeEqual(digest(given), want);
}

/** The token of an `Authorization: Bearer <token>` header, or null when absent or another scheme. */
export function bearerToken(header: string | null | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer(?:[ ]+(.*))?$/i.exec(header.trim());
  return m ? (m[1] ?? "") : null;
}
