export {
  BUILTIN_CHANNEL_HOSTS,
  BUILTIN_CHANNEL_OPTIONAL_ROLES,
  BUILTIN_CHANNEL_ROLES,
  channelSecretProblems,
  channelSpecs,
  checkChannelSecrets,
} from "./config.ts";
export { awaitsFirstDelivery } from "./intake.ts";
export {
  ChannelPipeline,
  type ChannelSpec,
  type DeliveryOutcome,
  type InboundMessage,
  type PipelineDeps,
  type WebhookResponse,
} from "./pipeline.ts";
export { DEFAULT_RETRY_POLICY, MAX_DELIVERY_ATTEMPTS, nextAttemptAt, RetryLoop, type RetryPolicy } from "./outbox.ts";
export { Inbox, type InboxEntry, type RetryResult } from "./inbox.ts";
export { readSendResult, type SendResultStyle, type SendVerdict } from "./send-result.ts";
export { verifyWebhook, type Verdict, type VerifyScheme } from "./verify.ts";
export { type Admission, ChannelAccess, DEFAULT_POLICY, isGroupMessage, type RefusalReason } from "./access.ts";
export { normalizeCode, PAIRING_CODE_TTL_MS, PAIRING_RESEND_MS, Pairings, type PairingView } from "./pairing.ts";
export { ChannelsModule, type ChannelsModuleDeps } from "./module.ts";
