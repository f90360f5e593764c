export { BUILTIN_CHANNEL_HOSTS, channelSecretProblems, channelSpecs, checkChannelSecrets } from "./config.ts";
export { ChannelPipeline, type ChannelSpec, type InboundMessage, type PipelineDeps, type WebhookResponse } from "./pipeline.ts";
export { verifyWebhook, type Verdict, type VerifyScheme } from "./verify.ts";
