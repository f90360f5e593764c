export { hostOf, isLoopback } from "./loopback.ts";
export { type ExposurePolicy, hostAccess, isHostAllowed, isOriginAllowed } from "./origin.ts";
export { createFailureLimiter, type FailureLimiter, type FailureLimiterOptions, limiterKey } from "./rate-limit.ts";
export { bearerToken, createTokenCheck } from "./token.ts";
