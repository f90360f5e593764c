/** The auth layer (SPEC §5): the one token check, the failure limiter, and the Host and Origin exposure rules. */
export { type Authenticator, type AuthVerdict, createAuthenticator, refusalOf } from "./authenticator.ts";
export { hostOf, isLoopback } from "./loopback.ts";
export { type ExposurePolicy, hostAccess, isHostAllowed, isOriginAllowed } from "./origin.ts";
export { createFailureLimiter, type FailureLimiter, type FailureLimiterOptions, limiterKey } from "./rate-limit.ts";
export { bearerToken, createTokenCheck } from "./token.ts";
