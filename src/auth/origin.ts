import { hostOf, isLoopback } from "./loopback.ts";

/**
 * Browser-facing exposure rules for one gateway (SPEC §5).
 * - Origin: a request carrying an Origin header must come from the gateway's own origin or an
 *   allowed one; non-browser clients send none and pass.
 * - Host: a gateway without a token answers only to loopback Host names (or its own bind address),
 *   which defeats DNS rebinding — a page on evil.example whose name resolves to 127.0.0.1 would
 *   otherwise be "same-origin" with a loopback gateway.
 */
export interface ExposurePolicy {
  bind: string;
  tls: boolean;
  tokenRequired: boolean;
  allowedOrigins: readonly string[];
  /** `[gateway] public_url` (an origin behind a reverse proxy), "" for none. */
  publicUrl?: string;
}

/**
 * What a request for this Host may reach: `all`, only `webhooks` (the public host of a gateway
 * without a token: platforms sign their webhooks, but /ws, /v1 and the page would be open to the
 * internet), or `none` (a foreign name: the DNS-rebinding guard).
 */
export function hostAccess(policy: ExposurePolicy, hostHeader: string | null): "all" | "webhooks" | "none" {
  if (policy.tokenRequired) return "all";
  if (!hostHeader) return "none";
  const host = hostOf(hostHeader).toLowerCase();
  if (isLoopback(host) || host === policy.bind.toLowerCase() || `[${policy.bind.toLowerCase()}]` === host) return "all";
  return publicHost(policy) === hostHeader.toLowerCase() ? "webhooks" : "none";
}

export function isHostAllowed(policy: ExposurePolicy, hostHeader: string | null): boolean {
  return hostAccess(policy, hostHeader) === "all";
}

/** The Host header a request through the proxy carries (host[:port] of public_url), or null. */
function publicHost(policy: ExposurePolicy): string | null {
  if (!policy.publicUrl) return null;
  try {
    return new URL(policy.publicUrl).host.toLowerCase();
  } catch {
    return null;
  }
}

export function isOriginAllowed(policy: ExposurePolicy, origin: string | null, hostHeader: string | null): boolean {
  if (origin === null) return true;
  const normalized = origin.toLowerCase().replace(/\/$/, "");
  const allowed = policy.publicUrl ? [...policy.allowedOrigins, policy.publicUrl] : policy.allowedOrigins;
  if (allowed.some((o) => o.toLowerCase().replace(/\/$/, "") === normalized)) return true;
  if (!hostHeader || !isHostAllowed(policy, hostHeader)) return false;
  const own = `${policy.tls ? "https" : "http"}://${hostHeader.toLowerCase()}`;
  return normalized === own || normalized === stripDefaultPort(own, policy.tls);
}

function stripDefaultPort(origin: string, tls: boolean): string {
  const port = tls ? ":443" : ":80";
  return origin.endsWith(port) ? origin.slice(0, -port.length) : origin;
}
