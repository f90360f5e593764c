export { BUILTIN_CHANNEL_HOSTS, BUILTIN_CHANNEL_ROLES, channelSecretProblems, channelSpecs, checkChannelSecrets } from "./config.ts";
export { awaitsFirstDelivery } from "./intake.ts";
export { ChannelPipeline, type ChannelSpec, type InboundMessage, type PipelineDeps, type WebhookResponse } from "./pipeline.ts";
export { verifyWebhook, type Verdict, type VerifyScheme } from "./verify.ts";
export { type Admission, ChannelAccess, DEFAULT_POLICY, isGroupMessage, type RefusalReason } from "./access.ts";
export { normalizeCode, PAIRING_CODE_TTL_MS, PAIRING_RESEND_MS, Pairings, type PairingView } from "./pairing.ts";
