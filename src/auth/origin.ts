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
}

export function isHostAllowed(policy: ExposurePolicy, hostHeader: string | null): boolean {
  if (policy.tokenRequired) return true;
  if (!hostHeader) return false;
  const host = hostOf(hostHeader).toLowerCase();
  return isLoopback(host) || host === policy.bind.toLowerCase() || `[${policy.bind.toLowerCase()}]` === host;
}

export function isOriginAllowed(policy: ExposurePolicy, origin: string | null, hostHeader: string | null): boolean {
  if (origin === null) return true;
  const normalized = origin.toLowerCase().replace(/\/$/, "");
  if (policy.allowedOrigins.some((o) => o.toLowerCase().replace(/\/$/, "") === normalized)) return true;
  if (!hostHeader || !isHostAllowed(policy, hostHeader)) return false;
  const own = `${policy.tls ? "https" : "http"}://${hostHeader.toLowerCase()}`;
  return normalized === own || normalized === stripDefaultPort(own, policy.tls);
}

function stripDefaultPort(origin: string, tls: boolean): string {
  const port = tls ? ":443" : ":80";
  return origin.endsWith(port) ? origin.slice(0, -port.length) : origin;
}
