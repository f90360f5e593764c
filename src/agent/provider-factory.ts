/**
 * Builds the stream function of an agent from its config: its provider over HTTP with retries,
 * then its `fallbacks` in order — the chain is withFallbacks (./retry.ts). API keys are resolved
 * per SPEC §1 when the chain reaches a step, so a key added with `exoclaw secret set` works without
 * a restart — and only for their own endpoint: an agent with a custom `base_url` sends only its own
 * key there (resolveAgentKey). Fallback steps use their provider's default endpoint and key.
 *
 * Before each step's request the stream yields `{type:"model"}` naming the step's provider and
 * model; the request is made only when the consumer pulls the next event, so the metering wrapper
 * can reserve at that model's price first (and stop the step by not pulling). A step that cannot be
 * tried (no key for its provider's own endpoint) ends in its error with no `model` event and no request.
 */
import { type AgentConfig, type ProviderId, PROVIDERS, resolveApiKey, takesNoKey } from "../config/index.ts";
import { resolveAgentKey } from "../config/api-keys.ts";
import type { Logger } from "../lib/log.ts";
import type { StreamFn } from "./loop.ts";
import { withIdleTimeout } from "./idle-timeout.ts";
import { factoryFor } from "./providers/registry.ts";
import { type RetryOptions, withFallbacks, withRetries } from "./retry.ts";
import { ProviderError } from "./provider-error.ts";
import type { ResolvedKey } from "../config/index.ts";
import type { Provider, StreamEvent } from "./types.ts";

export interface ProviderContext {
  home: string;
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  fetch?: typeof fetch;
  retry?: RetryOptions;
}

interface Step {
  provider: ProviderId;
  /** "" for the provider's own endpoint. */
  base_url: string;
  key: () => ResolvedKey;
}

/**
 * One step of the chain as a provider: resolves its key, then (with a key, or where none is needed)
 * announces its model and streams from its provider, retried. Never throws.
 */
function stepProvider(step: Step, agent: AgentConfig, ctx: ProviderContext): Provider {
  return {
    id: step.provider,
    async *stream(req, { signal }): AsyncGenerator<StreamEvent> {
      const { key, source } = step.key();
      if (source === "config")
        ctx.log.warn("api_key read from the config file; prefer `exoclaw secret set` or an environment variable", {
          provider: step.provider,
        });
      // The provider's own endpoint refuses a call without a key: say what to do instead of making
      // it (and, with no network, instead of a DNS error). A custom base_url may need none.
      if (key === null && !takesNoKey(step.provider) && step.base_url === "") {
        const env = PROVIDERS[step.provider].keyEnv;
        const error = new ProviderError(
          step.provider,
          `${step.provider}: no API key — run \`exoclaw onboard\` or \`exoclaw secret set ${step.provider}\`${env ? ` (or set ${env})` : ""}`,
          { status: 401 },
        );
        return yield { type: "error", error };
      }
      let provider: Provider;
      try {
        const make = await factoryFor(step.provider);
        const quietLimited = withIdleTimeout(ctx.fetch ?? fetch, agent.idle_timeout_ms);
        provider = withRetries(
          make({ apiKey: key, ...(step.base_url && { baseUrl: step.base_url }), fetch: quietLimited }),
          ctx.retry,
        );
      } catch (e) {
        return yield {
          type: "error",
          error: e instanceof ProviderError ? e : new ProviderError(step.provider, `${step.provider}: ${String(e)}`),
        };
      }
      yield { type: "model", provider: step.provider, model: req.model };
      yield* provider.stream(req, signal ? { signal } : {});
    },
  };
}

export function providerStream(agent: AgentConfig, ctx: ProviderContext): StreamFn {
  // The agent's own step: its own endpoint's key. A fallback goes to its provider's default
  // endpoint: that provider's key (the agent's api_key too, unless it was meant for a custom base_url).
  const own = stepProvider(
    { provider: agent.provider, base_url: agent.base_url, key: () => resolveAgentKey(ctx.env, ctx.home, agent) },
    agent,
    ctx,
  );
  const fallbacks = agent.fallbacks.map((f) => ({
    model: f.model,
    provider: stepProvider(
      {
        provider: f.provider,
        base_url: "",
        key: () =>
          resolveApiKey(
            ctx.env,
            ctx.home,
            f.provider,
            f.provider === agent.provider && agent.base_url === "" ? agent.api_key : undefined,
          ),
      },
      agent,
      ctx,
    ),
  }));
  const chain = withFallbacks(own, fallbacks);
  return (req, signal) => chain.stream({ ...req, model: agent.model }, { signal });
}
